// Bind mounts come from the host, which the guest cannot see. What each kind of source becomes
// in a VM: a regular file or a directory is shared over 9p (how, the caller decides: the shim
// for the container a VM boots for, runtime/pod.h for a pod member); Podman's /dev/shm (a host
// tmpfs of --shm-size) becomes a tmpfs of that size in the guest, as in Kata; a device becomes
// the guest's own device with the same numbers; a socket or FIFO cannot cross into a VM and is
// refused. Each source is opened once (following symlinks, as mount(2) does for runc: Podman
// binds /usr/libexec/podman/catatonit, a symlink, for --init) and only that descriptor is used,
// so a path swapped after the check cannot redirect a share.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/channel/host_messages.h"
#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel {

enum class BindKind { File, Directory, GuestMade };

bool is_bind(const oci::Mount& mount);
bool is_readonly(const oci::Mount& mount);
// O_PATH descriptor of a bind source, symlinks followed.
Result<UniqueFd> open_bind_source(const std::string& source);
// What the source open as `fd` becomes. For GuestMade, `entry` (the agent's description of the
// bind, with its destination and readonly set) gets the tmpfs size or the device numbers.
Result<BindKind> classify_bind(const oci::Mount& mount, int fd, channel::GuestBind& entry);

}  // namespace vessel

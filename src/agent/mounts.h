// Filesystems inside the guest: the agent's own (/proc, /sys, /dev) at boot, and a container's
// root: its 9p share, the spec's mounts under it, a minimal /dev, and the move to become "/".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/channel/host_messages.h"
#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::agent {

// A mount's options as mount(2) takes them: the flags, what goes to the file system as data,
// and the propagation they ask for.
struct ParsedOptions {
  unsigned long flags = 0;
  std::string data;
  std::string propagation;  // the last of shared, rslave, … the options name
};
ParsedOptions parse_mount_options(const std::vector<std::string>& options);

Result<void> mount_guest_filesystems();

// Where a container's root filesystem comes from: a 9p share of its own (the container the VM
// was booted for), or the directory `path` of a pod's shared 9p share (a pod member's root,
// mounted there by the host while the VM runs).
struct RootSource {
  std::string tag;
  std::string path;
};

// Mounts a pod's 9p share under /run/pods/TAG in the agent's own mount namespace, once: a
// virtio-9p device takes one mount at a time, and each member's namespace inherits it. Its
// entries are the container's volumes, and pod members' roots and files. cache=mmap caches
// nothing but what is mapped (no entries, no reads: the host mounts members' directories into it
// while the VM runs, and Podman rewrites /etc/hosts in place), and lets a program map a file
// shared and writable, as on a volume of its own.
Result<void> mount_pod_share(const std::string& tag);

// A detached clone of the mount at `path` in process `pid`'s mount namespace (a pod's /dev/shm,
// which its members share as they share its IPC namespace, as under runc).
Result<UniqueFd> clone_mount_of(pid_t pid, const std::string& path);

// Runs in the container's new mount namespace; afterwards "/" is the container's root.
// `binds` says how each bind mount of the spec reaches the guest.
Result<void> enter_container_root(const oci::Spec& spec, const RootSource& root_source,
                                  const std::vector<channel::GuestBind>& binds);

}  // namespace vessel::agent

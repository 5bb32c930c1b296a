// The host cgroup the spec names in linux.cgroupsPath ("/libpod_parent/libpod-ID" with Podman's
// cgroupfs manager): the shim joins it in every cgroup hierarchy the host has mounted, before it
// starts QEMU, so what reads the container's cgroup (podman stats) sees the VM's real cost, as it
// does runc's processes. delete removes it again. Where the host does not allow it (rootless
// without delegation) or a systemd manager owns it ("slice:prefix:name"), nothing is done.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::host_cgroup {

// The directories `path` names, one per mounted cgroup hierarchy.
std::vector<std::string> directories(const std::string& path);
// Creates them and moves this process into each; returns what could not be joined.
std::vector<std::string> join(const std::string& path);
// Removes them (once empty); quietly skips what is gone or busy.
void remove(const std::string& path);

}  // namespace vessel::host_cgroup

// The host cgroup the spec names in linux.cgroupsPath ("/libpod_parent/libpod-ID" with Podman's
// cgroupfs manager): the shim joins it in every cgroup hierarchy the host has mounted, before it
// starts QEMU, so what reads the container's cgroup (podman stats) sees the VM's real cost, as it
// does runc's processes. delete removes it again. Where the host does not allow it (rootless
// without delegation) or a systemd manager owns it ("slice:prefix:name"), nothing is done.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/oci_spec.h"
#include "common/result.h"

namespace vessel::host_cgroup {

// The directories `path` names, one per mounted cgroup hierarchy; a relative path is below the
// calling process's own cgroup in each (so `delete` must run where `create` ran, as with runc).
std::vector<std::string> directories(const std::string& path);
// Creates `dirs` (from directories()) and moves this process (or `pid`) into each; returns what
// could not be joined. (Resolve first: a relative path means something else once joined.)
std::vector<std::string> join(const std::vector<std::string>& dirs, pid_t pid = 0);
// Sets the spec's CPU limits on them (shares or weight, quota and period, cpuset CPUs and memory
// nodes), in whichever hierarchies have those files: the VM as a whole gets the CPU the
// container may use, as runc's processes would. Memory is left to the guest: a host limit of the
// container's size would kill the VM, whose guest kernel and agent live outside that limit.
// Returns what could not be written.
std::vector<std::string> apply_cpu_limits(const std::vector<std::string>& dirs,
                                          const oci::Resources& limits);
// The memory and CPU limits set on the cgroup that holds them: a pod's, where the engine gives a
// pod a cgroup of its own (`podman pod create --memory --cpus`), so the pod's VM can be sized
// for the whole pod when its first container is created.
oci::Resources enclosing_limits(const std::vector<std::string>& dirs);
// Removes them (once empty); quietly skips what is gone or busy.
void remove(const std::string& path);

}  // namespace vessel::host_cgroup

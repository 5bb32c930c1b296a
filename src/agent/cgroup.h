// A container's cgroup in the guest (cgroup v2): linux.resources enforced by the guest's own
// kernel, memory.max, cpu.max, cpuset.cpus and pids.max, on every process of the container (its
// init and each exec'd process). A container over its memory limit is OOM-killed in the guest.
// Each container of the VM has its own, /sys/fs/cgroup/NAME: "container" for the one the VM was
// booted for, "container-N" for the pod member created as process N.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/oci_spec.h"
#include "common/result.h"

namespace vessel::agent {

// Makes the container's cgroup with the spec's limits (an empty one made before is taken as it
// is: a template's guest makes the first container's before it is saved).
Result<void> create_cgroup(const std::string& name, const oci::Resources& resources);
// Writes the limits the resources name (create, and `update` while it runs).
// One file of the cgroup and what goes in it; a setting not required may fail (a controller the
// guest's kernel lacks) without failing the container.
struct CgroupSetting {
  std::string file;
  std::string value;
  bool required = true;
};
// What linux.resources writes, as runc converts it to cgroup v2.
std::vector<CgroupSetting> cgroup_settings(const oci::Resources& resources);
Result<void> apply_limits(const std::string& name, const oci::Resources& resources);
Result<void> join_cgroup(const std::string& name, pid_t pid);
// Back to the guest's root cgroup (the agent, after cloning the init).
Result<void> leave_cgroup(pid_t pid);
// Whether the kernel's OOM killer has killed a process of the container.
bool oom_killed(const std::string& name);
// Freezes or thaws every process of the container (a pod member paused while the VM runs on).
Result<void> freeze(const std::string& name, bool frozen);
// Kills every process of the container (cgroup.kill).
Result<void> kill_all(const std::string& name);
// Removes the cgroup of a container that is gone (a pod member).
void remove_cgroup(const std::string& name);

}  // namespace vessel::agent

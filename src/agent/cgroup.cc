#include "agent/cgroup.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "agent/device_filter.h"
#include "common/log.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

constexpr const char* kRoot = "/sys/fs/cgroup";

std::string directory(const std::string& name) { return std::string(kRoot) + "/" + name; }

Result<void> write(const std::string& name, const std::string& file, const std::string& value) {
  std::string path = directory(name) + "/" + file;
  UniqueFd fd = TRY(sys::open(path, O_WRONLY));
  return sys::write_all(fd.get(), value).map_error(context("writing " + value + " to " + path));
}

// cgroup2 mounted and its controllers enabled for the containers' cgroups, once for the agent's
// life (a template's guest does it before it is saved: its clones find it done).
Result<void> prepare_root() {
  static bool prepared = false;
  if (prepared) return {};
  struct statfs fs;
  if (::statfs(kRoot, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
    if (::mount("cgroup2", kRoot, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
      return fail_errno("mounting cgroup2 on /sys/fs/cgroup");
  // Each controller on its own: one the kernel lacks must not keep the others off.
  for (const char* controller : {"+memory", "+pids", "+cpu", "+cpuset"}) {
    UniqueFd control = TRY(sys::open(std::string(kRoot) + "/cgroup.subtree_control", O_WRONLY));
    if (auto enabled = sys::write_all(control.get(), controller); !enabled)
      log::warning(std::string("cgroup controller ") + (controller + 1) + ": " +
                   enabled.error().message);
  }
  prepared = true;
  return {};
}

}  // namespace

Result<void> create_cgroup(const std::string& name, const oci::Resources& resources) {
  TRY(prepare_root());
  if (::mkdir(directory(name).c_str(), 0755) < 0 && errno != EEXIST)
    return fail_errno("mkdir " + directory(name));
  TRY(apply_limits(name, resources));
  if (resources.devices.empty()) return {};
  UniqueFd dir = TRY(sys::open(directory(name), O_RDONLY | O_DIRECTORY));
  return attach_device_filter(dir.get(), resources.devices)
      .map_error(context("linux.resources.devices"));
}

// A limit the spec names: a positive number, or none ("max") for -1 and 0 (as runc reads them).
static std::string limit(int64_t value) { return value > 0 ? std::to_string(value) : "max"; }

std::vector<CgroupSetting> cgroup_settings(const oci::Resources& resources) {
  std::vector<CgroupSetting> settings;
  if (resources.memory_limit) {
    settings.push_back({"memory.max", limit(*resources.memory_limit)});
    // The spec's swap is memory + swap (cgroup v1's memsw), cgroup v2 takes swap alone, as runc
    // converts it. The guest has no swap device, so either way the limit is the limit.
    std::string swap = "0";
    if (resources.memory_swap && *resources.memory_swap < 0)
      swap = "max";
    else if (resources.memory_swap && *resources.memory_limit > 0 &&
             *resources.memory_swap > *resources.memory_limit)
      swap = std::to_string(*resources.memory_swap - *resources.memory_limit);
    settings.push_back({"memory.swap.max", swap, false});
  }
  if (resources.pids_limit) settings.push_back({"pids.max", limit(*resources.pids_limit)});
  if (resources.cpu_quota || resources.cpu_period)
    settings.push_back({"cpu.max", limit(resources.cpu_quota.value_or(-1)) + " " +
                                       std::to_string(resources.cpu_period.value_or(100000))});
  if (!resources.cpuset_cpus.empty()) settings.push_back({"cpuset.cpus", resources.cpuset_cpus});
  return settings;
}

Result<void> apply_limits(const std::string& name, const oci::Resources& resources) {
  for (const auto& setting : cgroup_settings(resources)) {
    auto written = write(name, setting.file, setting.value);
    if (!written && setting.required) return written;
  }
  return {};
}

Result<void> join_cgroup(const std::string& name, pid_t pid) {
  return write(name, "cgroup.procs", std::to_string(pid));
}

Result<void> leave_cgroup(pid_t pid) {
  UniqueFd fd = TRY(sys::open(std::string(kRoot) + "/cgroup.procs", O_WRONLY));
  return sys::write_all(fd.get(), std::to_string(pid));
}

bool oom_killed(const std::string& name) {
  auto events = sys::read_file(directory(name) + "/memory.events", 4096);
  if (!events) return false;
  size_t at = events->find("oom_kill ");
  return at != std::string::npos && std::strtoull(events->c_str() + at + 9, nullptr, 10) > 0;
}

Result<void> freeze(const std::string& name, bool frozen) {
  return write(name, "cgroup.freeze", frozen ? "1" : "0");
}

Result<void> kill_all(const std::string& name) { return write(name, "cgroup.kill", "1"); }

void remove_cgroup(const std::string& name) { ::rmdir(directory(name).c_str()); }

}  // namespace vessel::agent

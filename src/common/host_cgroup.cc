#include "common/host_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "common/sys.h"

namespace vessel::host_cgroup {

namespace {

// Mount points of cgroup and cgroup2 file systems (fields of /proc/self/mountinfo).
std::vector<std::string> hierarchies() {
  std::vector<std::string> found;
  auto info = sys::read_file("/proc/self/mountinfo", 1 << 20);
  if (!info) return found;
  std::istringstream lines(*info);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, field;
    fields >> id >> parent >> device >> root >> mount_point;
    while (fields >> field && field != "-") {
    }
    std::string type;
    fields >> type;
    if (type == "cgroup" || type == "cgroup2") found.push_back(mount_point);
  }
  return found;
}

bool usable(const std::string& path) {
  return !path.empty() && path[0] == '/' && path.find(':') == std::string::npos &&
         path.find("/../") == std::string::npos && !path.ends_with("/..");
}

// A v1 cpuset cgroup takes no process until it has CPUs and memory nodes: inherit the parent's.
void fill_cpuset(const std::string& dir) {
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    auto mine = sys::read_file(dir + "/" + file, 4096);
    if (!mine || (!mine->empty() && *mine != "\n")) continue;
    std::string parent = dir.substr(0, dir.rfind('/'));
    fill_cpuset(parent);
    if (auto theirs = sys::read_file(parent + "/" + file, 4096))
      if (auto fd = sys::open(dir + "/" + file, O_WRONLY)) (void)sys::write_all(fd->get(), *theirs);
  }
}

}  // namespace

std::vector<std::string> directories(const std::string& path) {
  std::vector<std::string> dirs;
  if (!usable(path)) return dirs;
  for (const auto& hierarchy : hierarchies()) dirs.push_back(hierarchy + path);
  return dirs;
}

std::vector<std::string> join(const std::string& path) {
  std::vector<std::string> failed;
  for (const auto& dir : directories(path)) {
    if (!sys::mkdir_p(dir, 0755)) {
      failed.push_back(dir);
      continue;
    }
    fill_cpuset(dir);
    auto procs = sys::open(dir + "/cgroup.procs", O_WRONLY);
    if (!procs || !sys::write_all(procs->get(), std::to_string(::getpid()))) failed.push_back(dir);
  }
  return failed;
}

std::vector<std::string> apply_cpu_limits(const std::string& path, const oci::Resources& limits) {
  std::vector<std::string> failed;
  for (const auto& dir : directories(path)) {
    auto put = [&](const char* file, const std::string& value) {
      std::string target = dir + "/" + file;
      if (value.empty() || !sys::exists(target)) return;
      auto fd = sys::open(target, O_WRONLY);
      if (!fd || !sys::write_all(fd->get(), value)) failed.push_back(target + " = " + value);
    };
    auto number = [](const auto& value) { return value ? std::to_string(*value) : std::string(); };
    bool unified = sys::exists(dir + "/cgroup.controllers");
    if (unified) {
      // runc's conversion of shares (2 … 262144) to a weight (1 … 10000).
      if (limits.cpu_shares)
        put("cpu.weight", std::to_string(1 + ((*limits.cpu_shares - 2) * 9999) / 262142));
      if (limits.cpu_quota || limits.cpu_period)
        put("cpu.max",
            (limits.cpu_quota && *limits.cpu_quota > 0 ? std::to_string(*limits.cpu_quota)
                                                       : std::string("max")) +
                " " + std::to_string(limits.cpu_period.value_or(100000)));
    } else {
      put("cpu.shares", number(limits.cpu_shares));
      // The period first: a quota is checked against the period in place.
      put("cpu.cfs_period_us", number(limits.cpu_period));
      put("cpu.cfs_quota_us", number(limits.cpu_quota));
    }
    put("cpuset.cpus", limits.cpuset_cpus);
    put("cpuset.mems", limits.cpuset_mems);
  }
  return failed;
}

void remove(const std::string& path) {
  for (const auto& dir : directories(path)) ::rmdir(dir.c_str());
}

}  // namespace vessel::host_cgroup

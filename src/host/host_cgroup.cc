#include "host/host_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <sstream>

#include "common/sys.h"

namespace vessel::host_cgroup {

namespace {

struct Hierarchy {
  std::string mount_point;
  std::string controllers;  // "cpu", "cpu,cpuacct", "name=systemd"; empty for cgroup2
};

// Mounted cgroup and cgroup2 file systems (fields of /proc/self/mountinfo).
std::vector<Hierarchy> hierarchies() {
  std::vector<Hierarchy> found;
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
    std::string type, source, options;
    fields >> type >> source >> options;
    if (type == "cgroup2") found.push_back({mount_point, ""});
    if (type != "cgroup") continue;
    // The super options name the controllers among rw, clone_children and the like.
    std::string controllers;
    std::istringstream names(options);
    for (std::string name; std::getline(names, name, ',');)
      if (name != "rw" && name != "ro" && name != "clone_children" && name != "noprefix" &&
          !name.starts_with("release_agent") && name != "xattr")
        controllers += (controllers.empty() ? "" : ",") + name;
    found.push_back({mount_point, controllers});
  }
  return found;
}

// This process's cgroup in `hierarchy` (/proc/self/cgroup), where a relative cgroupsPath starts.
std::string own_cgroup(const Hierarchy& hierarchy) {
  auto text = sys::read_file("/proc/self/cgroup", 65536).value_or("");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    if (line.substr(first + 1, second - first - 1) == hierarchy.controllers)
      return line.substr(second + 1) == "/" ? "" : line.substr(second + 1);
  }
  return "";
}

bool usable(const std::string& path) {
  return !path.empty() && !path.starts_with("..") && path.find(':') == std::string::npos &&
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
  // An absolute path starts at each hierarchy's root; a relative one at this process's own cgroup
  // there, as runc reads it.
  for (const auto& hierarchy : hierarchies())
    dirs.push_back(hierarchy.mount_point +
                   (path[0] == '/' ? path : own_cgroup(hierarchy) + "/" + path));
  return dirs;
}

oci::Resources enclosing_limits(const std::vector<std::string>& dirs) {
  oci::Resources limits;
  // "max", -1 and the huge "unlimited" values of cgroup v1 are no limit.
  auto number = [](const std::string& file, size_t field = 0) -> std::optional<int64_t> {
    auto text = sys::read_file(file, 256);
    if (!text) return std::nullopt;
    std::istringstream words(*text);
    std::string word;
    for (size_t i = 0; i <= field; ++i) words >> word;
    return sys::positive_number(word);
  };
  for (const auto& dir : dirs) {
    std::string parent = dir.substr(0, dir.rfind('/'));
    for (const char* file : {"/memory.max", "/memory.limit_in_bytes"})
      if (auto value = number(parent + file); value && !limits.memory_limit)
        limits.memory_limit = value;
    if (auto quota = number(parent + "/cpu.max"); quota && !limits.cpu_quota) {
      limits.cpu_quota = quota;
      limits.cpu_period = number(parent + "/cpu.max", 1).value_or(100000);
    }
    if (auto quota = number(parent + "/cpu.cfs_quota_us"); quota && !limits.cpu_quota) {
      limits.cpu_quota = quota;
      limits.cpu_period = number(parent + "/cpu.cfs_period_us").value_or(100000);
    }
  }
  return limits;
}

std::vector<std::string> join(const std::vector<std::string>& dirs, pid_t pid) {
  std::vector<std::string> failed;
  for (const auto& dir : dirs) {
    if (!sys::mkdir_p(dir, 0755)) {
      failed.push_back(dir);
      continue;
    }
    fill_cpuset(dir);
    auto procs = sys::open(dir + "/cgroup.procs", O_WRONLY);
    if (!procs || !sys::write_all(procs->get(), std::to_string(pid ? pid : ::getpid())))
      failed.push_back(dir);
  }
  return failed;
}

std::vector<std::string> apply_cpu_limits(const std::vector<std::string>& dirs,
                                          const oci::Resources& limits) {
  std::vector<std::string> failed;
  for (const auto& dir : dirs) {
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

#include "agent/processes.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include "common/channel/agent_messages.h"
#include "common/sys.h"

namespace vessel::agent {

Result<std::vector<channel::GuestProcess>> list_processes(pid_t init) {
  struct stat init_ns;
  if (::stat(("/proc/" + std::to_string(init) + "/ns/pid").c_str(), &init_ns) < 0)
    return fail_errno("the container's pid namespace");
  struct Entry {
    long global_pid, global_ppid, pid;
    unsigned long uid;
    std::string command;
  };
  std::vector<Entry> entries;
  std::map<long, long> in_container;  // the agent's pid → the container's
  for (const auto& dir : std::filesystem::directory_iterator("/proc")) {
    const std::string name = dir.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat ns;
    if (::stat(("/proc/" + name + "/ns/pid").c_str(), &ns) < 0 || ns.st_ino != init_ns.st_ino ||
        ns.st_dev != init_ns.st_dev)
      continue;
    auto status = sys::read_file("/proc/" + name + "/status", 8192);
    if (!status) continue;  // it exited meanwhile
    Entry entry{std::stol(name), 0, 0, 0, ""};
    auto field = [&](const char* key) -> std::string {
      size_t at = status->find(std::string("\n") + key + ":\t");
      if (at == std::string::npos) return "";
      at += std::strlen(key) + 3;
      return status->substr(at, status->find('\n', at) - at);
    };
    entry.global_ppid = std::atol(field("PPid").c_str());
    entry.uid = std::strtoul(field("Uid").c_str(), nullptr, 10);
    std::string nspid = field("NSpid");
    entry.pid = std::atol(nspid.substr(nspid.find_last_of('\t') + 1).c_str());
    std::string command = sys::read_file("/proc/" + name + "/cmdline", 4096).value_or("");
    while (!command.empty() && command.back() == '\0') command.pop_back();
    std::replace(command.begin(), command.end(), '\0', ' ');
    if (command.empty()) command = "[" + field("Name") + "]";
    entry.command = command.substr(0, 4096);
    in_container[entry.global_pid] = entry.pid;
    entries.push_back(std::move(entry));
    if (entries.size() >= channel::kMaxGuestProcesses) break;
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.pid < b.pid; });
  std::vector<channel::GuestProcess> list;
  for (const auto& entry : entries) {
    auto parent = in_container.find(entry.global_ppid);
    list.push_back({static_cast<uint32_t>(entry.pid),
                    static_cast<uint32_t>(parent == in_container.end() ? 0 : parent->second),
                    static_cast<uint32_t>(entry.uid),
                    channel::printable(entry.command, channel::kMaxGuestCommand)});
  }
  return list;
}

}  // namespace vessel::agent

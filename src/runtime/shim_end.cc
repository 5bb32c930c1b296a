#include "runtime/shim_end.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "common/sys.h"
#include "runtime/shim_client.h"

namespace vessel::runtime {

namespace {

constexpr auto kGrace = std::chrono::seconds(3);

// Every process below `pid`, children before their own children.
std::vector<pid_t> descendants(pid_t pid) {
  std::vector<pid_t> found;
  std::vector<pid_t> todo = {pid};
  while (!todo.empty() && found.size() < 4096) {
    pid_t parent = todo.back();
    todo.pop_back();
    std::error_code error;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(parent) + "/task", error)) {
      std::ifstream children(task.path() / "children");
      for (pid_t child; children >> child;) {
        found.push_back(child);
        todo.push_back(child);
      }
    }
  }
  return found;
}

// Thaws the freezer cgroup `pid` is in (v1 freezer.state, v2 cgroup.freeze); returns the cgroup
// it found frozen, or "".
std::string thaw(pid_t pid) {
  std::ifstream cgroups("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(cgroups, line)) {
    std::istringstream fields(line);
    std::string id, controllers, path;
    if (!std::getline(fields, id, ':') || !std::getline(fields, controllers, ':') ||
        !std::getline(fields, path) || path.find("..") != std::string::npos)
      continue;
    std::string file, thawed;
    if (controllers == "freezer") {
      file = "/sys/fs/cgroup/freezer" + path + "/freezer.state";
      thawed = "THAWED";
    } else if (controllers.empty()) {
      file = "/sys/fs/cgroup" + path + "/cgroup.freeze";
      thawed = "0";
    } else {
      continue;
    }
    auto state = sys::read_file(file, 64);
    if (!state || state->starts_with("THAWED") || state->starts_with("0")) continue;
    std::ofstream(file) << thawed;
    return file.substr(0, file.rfind('/'));
  }
  return "";
}

}  // namespace

bool wait_until_gone(const ContainerState& state, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (sys::process_alive(state.pid, state.pid_start_time)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

Result<void> end_shim(const StateStore& store, const ContainerState& state) {
  if (!sys::process_alive(state.pid, state.pid_start_time)) return {};
  (void)shim_request(store, state, control::request::Kill{SIGKILL}, std::chrono::seconds(5));
  if (wait_until_gone(state, kGrace)) return {};
  ::kill(state.pid, SIGKILL);
  if (wait_until_gone(state, kGrace)) return {};
  // It cannot run: its VM goes without it, and a frozen cgroup is thawed for the kill to land.
  for (pid_t pid : descendants(state.pid)) ::kill(pid, SIGKILL);
  std::string frozen = thaw(state.pid);
  if (wait_until_gone(state, kGrace)) return {};
  return fail(EBUSY, "cannot delete container \"" + state.id + "\": its shim (pid " +
                         std::to_string(state.pid) + ") does not die on SIGKILL" +
                         (frozen.empty() ? "" : " (its cgroup " + frozen + " was frozen)") +
                         ": end it, then delete again");
}

}  // namespace vessel::runtime

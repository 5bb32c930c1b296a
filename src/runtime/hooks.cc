#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/process.h"
#include "common/sys.h"

namespace vessel::runtime {

using nlohmann::json;

namespace {

Result<std::vector<std::string>> strings(const json& hook, const char* key,
                                         const std::string& where) {
  std::vector<std::string> out;
  if (!hook.contains(key) || hook[key].is_null()) return out;
  if (!hook[key].is_array()) return fail(where + "." + key + " must be an array of strings");
  for (const auto& item : hook[key]) {
    if (!item.is_string()) return fail(where + "." + key + " must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

Result<std::vector<Hook>> hooks_of(const json& config, const std::string& phase) {
  std::vector<Hook> hooks;
  if (!config.is_object() || !config.contains("hooks") || !config["hooks"].is_object() ||
      !config["hooks"].contains(phase) || config["hooks"][phase].is_null())
    return hooks;
  const json& list = config["hooks"][phase];
  if (!list.is_array()) return fail("hooks." + phase + " must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = "hooks." + phase + "[" + std::to_string(i) + "]";
    const json& entry = list[i];
    if (!entry.is_object() || !entry.contains("path") || !entry["path"].is_string() ||
        entry["path"].get<std::string>().empty() || entry["path"].get<std::string>()[0] != '/')
      return fail(where + ".path must be an absolute path");
    Hook hook;
    hook.path = entry["path"];
    hook.args = TRY(strings(entry, "args", where));
    if (entry.contains("env")) hook.env = TRY(strings(entry, "env", where));
    if (entry.contains("timeout")) {
      if (!entry["timeout"].is_number_integer() || entry["timeout"].get<int64_t>() <= 0)
        return fail(where + ".timeout must be a positive number of seconds");
      hook.timeout_seconds =
          static_cast<int>(std::min<int64_t>(entry["timeout"].get<int64_t>(), 86400));
    }
    hooks.push_back(std::move(hook));
  }
  return hooks;
}

Result<void> refuse_guest_hooks(const json& config) {
  for (const char* phase : {"createContainer", "startContainer"})
    if (!TRY(hooks_of(config, phase)).empty())
      return fail(std::string("hooks.") + phase +
                  " must run in the container's namespaces, which are inside the VM: use "
                  "createRuntime or poststart hooks, which run on the host");
  return {};
}

Result<void> run_hooks(const std::vector<Hook>& hooks, const std::string& phase,
                       const std::string& state) {
  for (const auto& hook : hooks) {
    std::string name = phase + " hook " + hook.path;
    auto input = TRY(sys::pipe());
    auto output = TRY(sys::pipe());
    SpawnOptions options;
    // As execv(path, args): args[0] is what the program is called, path is what runs.
    options.argv = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
    options.program = hook.path;
    options.env = hook.env;
    options.fds = {{0, input.read.get()}, {1, output.write.get()}, {2, output.write.get()}};
    ChildProcess child = TRY(ChildProcess::spawn(options).map_error(context(name)));
    input.read.reset();
    output.write.reset();
    (void)sys::write_all(input.write.get(), state);  // a hook may well not read it
    input.write.reset();
    // Its output, bounded, until it closes or the timeout passes.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(hook.timeout_seconds);
    std::string printed;
    for (;;) {
      int wait_ms = -1;
      if (hook.timeout_seconds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          child.kill(SIGKILL);
          return fail(ETIMEDOUT, name + " did not finish within " +
                                     std::to_string(hook.timeout_seconds) + " s");
        }
        wait_ms = static_cast<int>(left.count());
      }
      pollfd entry{output.read.get(), POLLIN, 0};
      if (::poll(&entry, 1, wait_ms) < 0 && errno != EINTR) return fail_errno("poll");
      if (!entry.revents) continue;
      char buffer[4096];
      ssize_t n = ::read(output.read.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      if (printed.size() < 4096) printed.append(buffer, std::min<size_t>(n, 4096 - printed.size()));
    }
    std::optional<int> finished;
    while (hook.timeout_seconds > 0 && !(finished = TRY(child.try_wait()))) {
      if (std::chrono::steady_clock::now() >= deadline) {
        child.kill(SIGKILL);
        return fail(ETIMEDOUT,
                    name + " did not finish within " + std::to_string(hook.timeout_seconds) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    int status = finished ? *finished : TRY(child.wait());
    if (status != 0) {
      while (!printed.empty() && printed.back() == '\n') printed.pop_back();
      return fail(name + " failed with status " + std::to_string(exit_code_from_status(status)) +
                  (printed.empty() ? "" : ": " + printed));
    }
  }
  return {};
}

}  // namespace vessel::runtime

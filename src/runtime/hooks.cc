#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/sys.h"
#include "host/process.h"

namespace vessel::runtime {

using nlohmann::json;

Result<void> refuse_guest_hooks(const oci::Spec& spec) {
  for (const char* phase : {"createContainer", "startContainer"})
    if (!spec.hooks.of(phase).empty())
      return fail(std::string("hooks.") + phase +
                  " must run in the container's namespaces, which are inside the VM: use "
                  "createRuntime or poststart hooks, which run on the host");
  return {};
}

Result<void> run_hooks(const std::vector<oci::Hook>& hooks, const std::string& phase,
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

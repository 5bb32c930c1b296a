// ChildProcess starts a program with exactly the descriptors it is given and, unless released,
// kills and reaps it when destroyed, so a failed setup never leaves a process behind.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace vessel {

struct SpawnOptions {
  std::vector<std::string> argv;
  // What runs, when it is not argv[0] (an OCI hook: `path` runs with `args`, whose first entry
  // the program may dispatch on, as Docker's libnetwork-setkey hook does).
  std::string program;
  // (child fd, parent fd) pairs. Child descriptors above the highest listed one are closed;
  // 0, 1 and 2 are inherited unless listed.
  std::vector<std::pair<int, int>> fds;
  bool die_with_parent = false;  // PR_SET_PDEATHSIG SIGKILL
  // The child's whole environment; unset: the caller's.
  std::optional<std::vector<std::string>> env;
  // CLONE_NEW* flags: the child starts in new namespaces (with CLONE_NEWPID it is their pid 1).
  int namespaces = 0;
  // Runs in the parent once the child exists and before it goes on (to write its id maps).
  std::function<Result<void>(pid_t)> after_clone;
  // Runs in the child once its descriptors are in place, just before exec (to confine it).
  std::function<Result<void>()> before_exec;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept : m_pid(std::exchange(other.m_pid, -1)) {}
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Fails if the program cannot be executed (the exec error is reported, not just an exit code).
  static Result<ChildProcess> spawn(const SpawnOptions& options);

  // Owns a child this process forked itself.
  static ChildProcess adopt(pid_t pid) { return ChildProcess(pid); }

  pid_t pid() const { return m_pid; }
  // Leaves the process running and stops owning it.
  pid_t release() { return std::exchange(m_pid, -1); }
  // Waits for the process; returns its wait status.
  Result<int> wait();
  // Reaps the process if it has exited; returns its wait status then.
  Result<std::optional<int>> try_wait();
  void kill(int signal) const;

 private:
  explicit ChildProcess(pid_t pid) : m_pid(pid) {}
  pid_t m_pid = -1;
};

// Runs `work` in a forked child that has joined the namespace `ns` (a CLONE_NEW* `type`), so
// that this process stays where it is; returns what `work` returned, or its error.
Result<std::string> in_namespace(int ns, int type,
                                 const std::function<Result<std::string>()>& work);

// 128+N for a process killed by signal N, else its exit code, as shells and conmon report it.
int exit_code_from_status(int wait_status);

}  // namespace vessel

namespace vessel {

// Runs a helper program (absolute path: kill and delete get no PATH) and returns its stdout;
// fails with the program's stderr when it exits non-zero.
Result<std::string> capture_output(const std::vector<std::string>& argv);

}  // namespace vessel

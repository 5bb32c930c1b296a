#include "host/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "common/sys.h"

namespace vessel {

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    this->~ChildProcess();
    m_pid = std::exchange(other.m_pid, -1);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (m_pid <= 0) return;
  ::kill(m_pid, SIGKILL);
  while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

[[noreturn]] static void child_fail(int error_fd, const std::string& message) {
  (void)!::write(error_fd, message.data(), message.size());
  ::_exit(127);
}

[[noreturn]] static void child_exec(const SpawnOptions& options, int error_fd, int go_fd) {
  if (go_fd >= 0) {  // wait until the parent has done its part (after_clone)
    char byte;
    while (::read(go_fd, &byte, 1) < 0 && errno == EINTR) {
    }
  }
  // Move every source, and the error pipe, out of the way first, so that a target never clobbers
  // a later source or the pipe.
  error_fd = ::fcntl(error_fd, F_DUPFD_CLOEXEC, 256);
  std::vector<int> moved;
  int highest = 2;
  for (const auto& [target, source] : options.fds) {
    moved.push_back(::fcntl(source, F_DUPFD_CLOEXEC, 256));
    highest = std::max(highest, target);
  }
  for (size_t i = 0; i < options.fds.size(); ++i) ::dup2(moved[i], options.fds[i].first);
  for (int fd = 3; fd <= highest; ++fd) {
    bool wanted = false;
    for (const auto& entry : options.fds) wanted |= entry.first == fd;
    if (!wanted) ::close(fd);
  }
  int keep_error_fd = ::fcntl(error_fd, F_DUPFD_CLOEXEC, highest + 1);
  ::syscall(SYS_close_range, keep_error_fd + 1, ~0U, 0);
  for (int fd = highest + 1; fd < keep_error_fd; ++fd) ::close(fd);
  if (options.die_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (options.before_exec)
    if (auto ready = options.before_exec(); !ready)
      child_fail(keep_error_fd, ready.error().message);
  std::vector<char*> argv, envp;
  for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  if (options.env) {
    for (const auto& entry : *options.env) envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);
  }
  const std::string& program = options.program.empty() ? options.argv[0] : options.program;
  ::execve(program.c_str(), argv.data(), options.env ? envp.data() : environ);
  child_fail(keep_error_fd, "execute " + program + ": " + std::strerror(errno));
}

Result<ChildProcess> ChildProcess::spawn(const SpawnOptions& options) {
  auto error_pipe = TRY(sys::pipe());
  std::optional<sys::Pipe> go;
  if (options.after_clone) go = TRY(sys::pipe());
  // clone without a new stack behaves as fork, in the namespaces asked for.
  pid_t pid = static_cast<pid_t>(
      ::syscall(SYS_clone, SIGCHLD | options.namespaces, nullptr, nullptr, nullptr, 0));
  if (pid < 0) return fail_errno("clone");
  if (pid == 0) {
    if (go) go->write.reset();
    child_exec(options, error_pipe.write.get(), go ? go->read.get() : -1);
  }
  ChildProcess child(pid);
  error_pipe.write.reset();
  if (go) {
    go->read.reset();
    TRY(options.after_clone(pid));  // on failure `child` is killed and reaped
    go->write.reset();
  }
  std::string error = TRY(sys::read_to_end(error_pipe.read.get(), 4096));
  if (!error.empty()) {
    (void)child.wait();
    return fail(EIO, error);
  }
  return child;
}

Result<int> ChildProcess::wait() {
  int status = 0;
  for (;;) {
    pid_t n = ::waitpid(m_pid, &status, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("waitpid");
    m_pid = -1;
    return status;
  }
}

Result<std::optional<int>> ChildProcess::try_wait() {
  int status = 0;
  pid_t n = ::waitpid(m_pid, &status, WNOHANG);
  if (n < 0) return fail_errno("waitpid");
  if (n == 0) return std::optional<int>{};
  m_pid = -1;
  return std::optional<int>{status};
}

void ChildProcess::kill(int signal) const {
  if (m_pid > 0) ::kill(m_pid, signal);
}

int exit_code_from_status(int wait_status) {
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return WEXITSTATUS(wait_status);
}

}  // namespace vessel

namespace vessel {

Result<std::string> capture_output(const std::vector<std::string>& argv) {
  auto out = TRY(sys::pipe());
  auto err = TRY(sys::pipe());
  UniqueFd null_fd = TRY(sys::open("/dev/null", O_RDONLY));
  SpawnOptions options;
  options.argv = argv;
  options.fds = {{0, null_fd.get()}, {1, out.write.get()}, {2, err.write.get()}};
  ChildProcess child = TRY(ChildProcess::spawn(options));
  out.write.reset();
  err.write.reset();
  std::string output = TRY(sys::read_to_end(out.read.get(), 4 << 20));
  std::string errors = sys::read_to_end(err.read.get(), 1 << 20).value_or("");
  int status = TRY(child.wait());
  if (status != 0) {
    while (!errors.empty() && errors.back() == '\n') errors.pop_back();
    std::string command;
    for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
    return fail(EIO,
                command + ": " +
                    (errors.empty() ? "exit status " + std::to_string(exit_code_from_status(status))
                                    : errors));
  }
  return output;
}

Result<std::string> in_namespace(int ns, int type,
                                 const std::function<Result<std::string>()>& work) {
  auto report = TRY(sys::pipe());
  pid_t child = ::fork();
  if (child < 0) return fail_errno("fork");
  if (child == 0) {
    report.read.reset();
    Result<std::string> done =
        ::setns(ns, type) == 0 ? work() : fail_errno("entering the container's namespace");
    // One byte says which it is: the value or the error follows.
    (void)sys::write_all(report.write.get(), done ? "+" + *done : "-" + done.error().message);
    ::_exit(0);
  }
  report.write.reset();
  std::string text = sys::read_to_end(report.read.get(), 1 << 20).value_or("");
  ::waitpid(child, nullptr, 0);
  if (text.empty()) return fail(EIO, "the helper in the container's namespace stopped");
  if (text[0] == '-') return fail(text.substr(1));
  return text.substr(1);
}

}  // namespace vessel

#include "agent/container.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "agent/mounts.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

// The child writes 'R' when ready to exec, or an error message, on the report pipe.
constexpr char kReady = 'R';

[[noreturn]] void child_fail(int report_fd, const std::string& message) {
  (void)sys::write_all(report_fd, message);
  ::_exit(127);
}

Result<UniqueFd> open_terminal(int master_socket) {
  UniqueFd master = TRY(sys::open("/dev/ptmx", O_RDWR | O_NOCTTY));
  int unlock = 0;
  if (::ioctl(master.get(), TIOCSPTLCK, &unlock) < 0) return fail_errno("unlock pty");
  // SAFETY: TIOCGPTPEER opens the peer of the master we just made, in this devpts instance.
  int slave = ::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return fail_errno("open pty peer");
  TRY(sys::send_fd(master_socket, master.get(), "/dev/ptmx"));
  return UniqueFd(slave);
}

[[noreturn]] void run_child(const oci::Spec& spec, const std::string& rootfs_tag,
                            const nlohmann::json& binds, int stdin_fd, int stdout_fd, int stderr_fd,
                            int master_socket, int start_fd, int report_fd) {
  auto check = [&](Result<void> result, const char* step) {
    if (!result) child_fail(report_fd, std::string(step) + ": " + result.error().message);
  };
  if (::setsid() < 0) child_fail(report_fd, "setsid failed");
  check(enter_container_root(spec, rootfs_tag, binds), "preparing the container's root");
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.c_str(), spec.hostname.size()) < 0)
    child_fail(report_fd, "sethostname failed");
  UniqueFd terminal;
  if (spec.process.terminal) {
    auto slave = open_terminal(master_socket);
    if (!slave) child_fail(report_fd, "creating the terminal: " + slave.error().message);
    terminal = std::move(*slave);
    stdin_fd = stdout_fd = stderr_fd = terminal.get();
    if (::ioctl(terminal.get(), TIOCSCTTY, 0) < 0)
      child_fail(report_fd, "making the terminal controlling failed");
  }
  if (::chdir(spec.process.cwd.c_str()) < 0)
    child_fail(report_fd, "cannot change to the working directory " + spec.process.cwd + ": " +
                              std::strerror(errno));
  auto program = find_executable(spec.process.args[0], spec.process.env);
  if (!program) child_fail(report_fd, program.error().message);

  const auto& user = spec.process.user;
  if (::setgroups(user.additional_gids.size(), user.additional_gids.data()) < 0)
    child_fail(report_fd, "setgroups failed");
  if (::setresgid(user.gid, user.gid, user.gid) < 0) child_fail(report_fd, "setgid failed");
  if (::setresuid(user.uid, user.uid, user.uid) < 0) child_fail(report_fd, "setuid failed");
  if (user.umask) ::umask(*user.umask);

  if (::dup2(stdin_fd, 0) < 0 || ::dup2(stdout_fd, 1) < 0 || ::dup2(stderr_fd, 2) < 0)
    child_fail(report_fd, "setting up stdio failed");
  (void)sys::write_all(report_fd, std::string_view(&kReady, 1));
  char go;
  if (::read(start_fd, &go, 1) != 1) ::_exit(0);  // the agent gave up on this container

  std::vector<char*> argv, envp;
  for (const auto& arg : spec.process.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  for (const auto& entry : spec.process.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(program->c_str(), argv.data(), envp.data());
  child_fail(report_fd, "exec " + *program + ": " + std::strerror(errno));
}

// Reads the child's report: kReady, or an error message followed by end of file.
Result<void> read_report(int fd, bool expect_ready) {
  std::string report;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buffer, n);
    if (expect_ready && report == std::string(1, kReady)) return {};
    if (report.size() > 4096) break;
  }
  if (report.empty()) {
    if (expect_ready) return fail("the container's process exited during setup");
    return {};  // the report pipe closed on exec: the program runs
  }
  return fail(report);
}

}  // namespace

Result<std::string> find_executable(const std::string& program,
                                    const std::vector<std::string>& env) {
  auto executable = [](const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) {
    if (executable(program)) return program;
    return fail(ENOENT,
                "exec: \"" + program + "\": stat " + program + ": no such file or directory");
  }
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& entry : env)
    if (entry.starts_with("PATH=")) path = entry.substr(5);
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (executable(candidate)) return candidate;
    start = end + 1;
  }
  return fail(ENOENT, "exec: \"" + program + "\": executable file not found in $PATH");
}

Result<Container> Container::create(const oci::Spec& spec, const std::string& rootfs_tag,
                                    const nlohmann::json& binds, ContainerStdio& stdio) {
  auto start_pipe = TRY(sys::pipe());
  auto report_pipe = TRY(sys::pipe());
  auto stdin_pipe = TRY(sys::pipe());
  auto stdout_pipe = TRY(sys::pipe());
  auto stderr_pipe = TRY(sys::pipe());
  auto terminal_sockets = TRY(sys::socketpair());

  // Always a new pid namespace: when the container's init exits, the kernel ends every process
  // left in it, so its stdout and stderr reach end of file and the exit can be reported.
  unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  pid_t pid = static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) return fail_errno("clone");
  if (pid == 0) {
    run_child(spec, rootfs_tag, binds, stdin_pipe.read.get(), stdout_pipe.write.get(),
              stderr_pipe.write.get(), terminal_sockets.second.get(), start_pipe.read.get(),
              report_pipe.write.get());
  }
  Container container;
  container.m_pid = pid;
  container.m_start_write = std::move(start_pipe.write);
  container.m_report_read = std::move(report_pipe.read);
  report_pipe.write.reset();
  terminal_sockets.second.reset();
  auto ready = read_report(container.m_report_read.get(), true);
  if (!ready) {
    ::kill(pid, SIGKILL);
    return tl::unexpected(ready.error());
  }
  if (spec.process.terminal) {
    UniqueFd master = TRY(sys::receive_fd(terminal_sockets.first.get()));
    stdio.stdout_read = UniqueFd(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
    stdio.stdin_write = std::move(master);
  } else {
    stdio.stdin_write = std::move(stdin_pipe.write);
    stdio.stdout_read = std::move(stdout_pipe.read);
    stdio.stderr_read = std::move(stderr_pipe.read);
  }
  return container;
}

Result<void> Container::start() {
  if (!m_start_write) return fail("the container was started already");
  TRY(sys::write_all(m_start_write.get(), "S"));
  m_start_write.reset();
  auto result = read_report(m_report_read.get(), false);
  m_report_read.reset();
  return result;
}

Result<void> Container::signal(int signal) const {
  if (::kill(m_pid, signal) < 0) return fail_errno("kill");
  return {};
}

}  // namespace vessel::agent

#include "agent/container.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <tuple>

#include "agent/cgroup.h"
#include "agent/container_child.h"
#include "agent/identity.h"
#include "agent/mounts.h"
#include "agent/seccomp.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

// The pod's namespaces a member's spec names by path, as file descriptors of the pod's init.

Result<PodNamespaces> pod_namespaces(const oci::Spec& spec, pid_t pod_init) {
  PodNamespaces namespaces;
  if (pod_init <= 0) return namespaces;
  for (const auto& [type, name, flag] :
       {std::tuple{"uts", "uts", CLONE_NEWUTS}, {"ipc", "ipc", CLONE_NEWIPC}}) {
    const oci::Namespace* wanted = spec.find_namespace(type);
    if (!wanted || wanted->path.empty()) continue;
    namespaces.joined.emplace_back(
        TRY(sys::open("/proc/" + std::to_string(pod_init) + "/ns/" + name, O_RDONLY)), flag);
    namespaces.own &= ~static_cast<unsigned long>(flag);
  }
  // A pid namespace by path: the pod's (the runtime checked), which the init is cloned into.
  if (const oci::Namespace* pid = spec.find_namespace("pid"); pid && !pid->path.empty())
    namespaces.pid = TRY(sys::open("/proc/" + std::to_string(pod_init) + "/ns/pid", O_RDONLY));
  return namespaces;
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

// The agent's ends and the child's ends of a process's stdio, and the socket a terminal's
// master comes back on.
constexpr size_t kStdioPipeSize = 1 << 20;

struct StdioPipes {
  sys::Pipe in, out, err;
  std::pair<UniqueFd, UniqueFd> terminal;

  static Result<StdioPipes> make() {
    StdioPipes pipes{TRY(sys::pipe()), TRY(sys::pipe()), TRY(sys::pipe()), TRY(sys::socketpair())};
    // A pipe of 64 KiB makes the agent wake, read and frame every 64 KiB; 1 MiB, a stream's
    // window, lets it take a window's worth at once. Best effort: the default works too.
    for (const auto* pipe : {&pipes.in, &pipes.out, &pipes.err})
      (void)::fcntl(pipe->read.get(), F_SETPIPE_SZ, static_cast<int>(kStdioPipeSize));
    return pipes;
  }
  ChildStdio child() const {
    return {in.read.get(), out.write.get(), err.write.get(), terminal.second.get()};
  }
  void close_child_ends() {
    in.read.reset();
    out.write.reset();
    err.write.reset();
    terminal.second.reset();
  }
  // Once the child is ready: what the agent relays.
  Result<void> hand_over(bool use_terminal, ContainerStdio& stdio) {
    if (use_terminal) {
      UniqueFd master = TRY(sys::receive_fd(terminal.first.get()));
      stdio.stdout_read = UniqueFd(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
      stdio.stdin_write = std::move(master);
    } else {
      stdio.stdin_write = std::move(in.write);
      stdio.stdout_read = std::move(out.read);
      stdio.stderr_read = std::move(err.read);
    }
    return {};
  }
};

}  // namespace

Result<Container> Container::create(const oci::Spec& spec, const Placement& placement,
                                    const std::vector<channel::GuestBind>& binds,
                                    const std::string& seccomp, ContainerStdio& stdio) {
  PodNamespaces pod = TRY(pod_namespaces(spec, placement.pod_init));
  auto start_pipe = TRY(sys::pipe());
  auto report_pipe = TRY(sys::pipe());
  StdioPipes pipes = TRY(StdioPipes::make());
  UniqueFd userns;
  if (wants_user_namespace(spec)) userns = TRY(make_user_namespace(spec));

  // A new pid namespace, unless a pod member shares its pod's (Kubernetes'
  // shareProcessNamespace, the CRI's default): when the init exits, the kernel ends every
  // process left in a pid namespace of its own, so its stdout and stderr reach end of file and
  // the exit can be reported; a member sharing its pod's has them ended through its cgroup
  // instead (the server's report_exits), as containerd's runc shim does.
  unsigned long flags = CLONE_NEWNS | pod.own | SIGCHLD | (pod.pid ? 0 : CLONE_NEWPID);
  UniqueFd own_pid;
  if (pod.pid) {
    own_pid = TRY(sys::open("/proc/self/ns/pid", O_RDONLY));
    if (::setns(pod.pid.get(), CLONE_NEWPID) < 0)
      return fail_errno("joining the pod's pid namespace");
  }
  // The init starts inside the container's cgroup, in a cgroup namespace rooted there, so
  // everything it runs is limited and its /sys/fs/cgroup shows its own limits (as with runc):
  // the agent steps into the cgroup for the clone and back out.
  bool in_cgroup = join_cgroup(placement.cgroup, ::getpid()).has_value();
  if (in_cgroup || spec.find_namespace("cgroup")) flags |= CLONE_NEWCGROUP;
  pid_t pid = static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr));
  if (pid == 0)
    run_init(spec, placement.root, pod, binds, seccomp, pipes.child(), userns.get(),
             start_pipe.read.get(), report_pipe.write.get());
  if (in_cgroup) (void)leave_cgroup(::getpid());
  if (own_pid) ::setns(own_pid.get(), CLONE_NEWPID);
  if (pid < 0) return fail_errno("clone");
  Container container;
  container.m_pid = pid;
  container.m_shares_pid = static_cast<bool>(pod.pid);
  container.m_seccomp = seccomp;
  container.m_cgroup = placement.cgroup;
  container.m_start_write = std::move(start_pipe.write);
  container.m_report_read = std::move(report_pipe.read);
  report_pipe.write.reset();
  pipes.close_child_ends();
  auto ready = read_report(container.m_report_read.get(), true);
  if (!ready) {
    ::kill(pid, SIGKILL);
    return tl::unexpected(ready.error());
  }
  TRY(pipes.hand_over(spec.process.terminal, stdio));
  return container;
}

Result<pid_t> Container::exec(const oci::Process& process, ContainerStdio& stdio) const {
  auto report_pipe = TRY(sys::pipe());
  StdioPipes pipes = TRY(StdioPipes::make());
  // The next child goes into the container's pid namespace; the agent itself stays where it is.
  UniqueFd own = TRY(sys::open("/proc/self/ns/pid", O_RDONLY));
  UniqueFd theirs = TRY(sys::open("/proc/" + std::to_string(m_pid) + "/ns/pid", O_RDONLY));
  if (::setns(theirs.get(), CLONE_NEWPID) < 0)
    return fail_errno("joining the container's pid namespace");
  pid_t pid = ::fork();
  if (pid == 0) run_exec(m_pid, process, m_seccomp, pipes.child(), report_pipe.write.get());
  ::setns(own.get(), CLONE_NEWPID);
  if (pid < 0) return fail_errno("fork");
  (void)join_cgroup(m_cgroup, pid);
  report_pipe.write.reset();
  pipes.close_child_ends();
  // The master is sent before exec; if it never comes, the report says why.
  auto handed = process.terminal ? pipes.hand_over(true, stdio) : Result<void>{};
  auto ran = read_report(report_pipe.read.get(), false);
  if (ran && !handed) ran = tl::unexpected(handed.error());
  if (!ran) {
    ::kill(pid, SIGKILL);
    return tl::unexpected(ran.error());
  }
  if (!process.terminal) TRY(pipes.hand_over(false, stdio));
  return pid;
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

#include "agent/container_child.h"

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
#include "agent/container.h"
#include "agent/identity.h"
#include "agent/mounts.h"
#include "agent/seccomp.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

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

int last_capability() {
  static int last = [] {
    auto text = sys::read_file("/proc/sys/kernel/cap_last_cap", 32);
    return text ? std::atoi(text->c_str()) : 40;
  }();
  return last;
}

// Written while still privileged in the guest: lowering the score needs CAP_SYS_RESOURCE there.
void set_oom_score_adj(const oci::Process& process, int report_fd) {
  if (!process.oom_score_adj) return;
  auto file = sys::open("/proc/self/oom_score_adj", O_WRONLY);
  if (!file || !sys::write_all(file->get(), std::to_string(*process.oom_score_adj)))
    child_fail(report_fd, "setting oomScoreAdj failed");
}

// Set before the user namespace is entered: raising a hard limit needs CAP_SYS_RESOURCE in the
// guest's own namespace.
void set_rlimits(const oci::Process& process, int report_fd) {
  for (const auto& limit : process.rlimits) {
    rlimit value{limit.soft, limit.hard};
    if (::setrlimit(limit.resource, &value) < 0)
      child_fail(report_fd, std::string("setrlimit failed: ") + std::strerror(errno));
  }
}

// Enters the user namespace made from the spec's mappings (identity.h), last of all: the
// namespaces and mounts before it belong to the guest, and the ids from here on are mapped.
void enter_user_namespace(int userns_fd, int report_fd) {
  if (userns_fd >= 0 && ::setns(userns_fd, CLONE_NEWUSER) < 0)
    child_fail(report_fd, std::string("entering the container's user namespace failed: ") +
                              std::strerror(errno));
}

// In the child, once its namespaces and root are in place: terminal, cwd, program lookup, user
// and stdio. Returns the program to exec; on failure reports and exits.
std::string prepare_process(const oci::Process& process, const std::string& seccomp,
                            ChildStdio stdio, int report_fd, UniqueFd& terminal) {
  if (process.terminal) {
    auto slave = open_terminal(stdio.master_socket);
    if (!slave) child_fail(report_fd, "creating the terminal: " + slave.error().message);
    terminal = std::move(*slave);
    stdio.in = stdio.out = stdio.err = terminal.get();
    if (::ioctl(terminal.get(), TIOCSCTTY, 0) < 0)
      child_fail(report_fd, "making the terminal controlling failed");
  }
  if (::chdir(process.cwd.c_str()) < 0)
    child_fail(report_fd, "cannot change to the working directory " + process.cwd + ": " +
                              std::strerror(errno));
  auto program = find_executable(process.args[0], process.env);
  if (!program) child_fail(report_fd, program.error().message);

  const auto& caps = process.capabilities;
  if (caps.bounding) {
    for (int cap = 0; cap <= last_capability(); ++cap)
      if (!(*caps.bounding >> cap & 1) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
        child_fail(report_fd,
                   "dropping capability " + std::to_string(cap) + " from the bounding set failed");
  }
  // Without no_new_privileges only a privileged process may load a filter: load it while still
  // root, as runc does; with it, as late as possible.
  auto load_filter = [&] {
    if (auto loaded = load_seccomp(seccomp); !loaded) child_fail(report_fd, loaded.error().message);
  };
  if (!process.no_new_privileges) load_filter();
  bool set_caps = caps.effective || caps.permitted || caps.inheritable;
  // Keep the permitted set across setuid, then set exactly the spec's sets.
  if (set_caps) ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
  const auto& user = process.user;
  if (::setgroups(user.additional_gids.size(), user.additional_gids.data()) < 0)
    child_fail(report_fd, "setgroups failed");
  if (::setresgid(user.gid, user.gid, user.gid) < 0) child_fail(report_fd, "setgid failed");
  if (::setresuid(user.uid, user.uid, user.uid) < 0) child_fail(report_fd, "setuid failed");
  if (user.umask) ::umask(*user.umask);
  if (set_caps) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    auto put = [&](uint64_t mask, auto member) {
      data[0].*member = static_cast<uint32_t>(mask);
      data[1].*member = static_cast<uint32_t>(mask >> 32);
    };
    put(caps.effective.value_or(0), &__user_cap_data_struct::effective);
    put(caps.permitted.value_or(0), &__user_cap_data_struct::permitted);
    put(caps.inheritable.value_or(0), &__user_cap_data_struct::inheritable);
    // SAFETY: capset takes a v3 header and two data words (64 capability bits).
    if (::syscall(SYS_capset, &header, data) < 0)
      child_fail(report_fd, std::string("setting capabilities failed: ") + std::strerror(errno));
    ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    for (int cap = 0; caps.ambient && cap <= last_capability(); ++cap)
      if (*caps.ambient >> cap & 1) ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
  }
  if (process.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    child_fail(report_fd, "setting no_new_privileges failed");
  if (process.no_new_privileges) load_filter();
  if (::dup2(stdio.in, 0) < 0 || ::dup2(stdio.out, 1) < 0 || ::dup2(stdio.err, 2) < 0)
    child_fail(report_fd, "setting up stdio failed");
  return *program;
}

// The home directory of `uid` in the container's /etc/passwd; "/" when it has none.
std::string home_of(uid_t uid) {
  auto passwd = sys::read_file("/etc/passwd", 1 << 20);
  std::istringstream lines(passwd.value_or(""));
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::istringstream parts(line);
    for (std::string field; std::getline(parts, field, ':');) fields.push_back(field);
    if (fields.size() >= 6 && fields[2] == std::to_string(uid) && !fields[5].empty())
      return fields[5];
  }
  return "/";
}

[[noreturn]] void exec_process(const oci::Process& process, const std::string& program,
                               int report_fd) {
  std::vector<char*> argv, envp;
  for (const auto& arg : process.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  for (const auto& entry : process.env) envp.push_back(const_cast<char*>(entry.c_str()));
  // As runc: without HOME, the user's home from the container's /etc/passwd, else "/".
  std::string home;
  if (std::none_of(process.env.begin(), process.env.end(),
                   [](const std::string& entry) { return entry.starts_with("HOME="); })) {
    home = "HOME=" + home_of(process.user.uid);
    envp.push_back(home.data());
  }
  envp.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(program.c_str(), argv.data(), envp.data());
  child_fail(report_fd, "exec " + program + ": " + std::strerror(errno));
}

}  // namespace

[[noreturn]] void run_init(const oci::Spec& spec, const RootSource& root, const PodNamespaces& pod,
                           const std::vector<channel::GuestBind>& binds, const std::string& seccomp,
                           ChildStdio stdio, int userns_fd, int start_fd, int report_fd) {
  if (::setsid() < 0) child_fail(report_fd, "setsid failed");
  for (const auto& [ns, type] : pod.joined)
    if (::setns(ns.get(), type) < 0)
      child_fail(report_fd,
                 std::string("joining the pod's namespace failed: ") + std::strerror(errno));
  set_oom_score_adj(spec.process, report_fd);
  if (auto entered = enter_container_root(spec, root, binds); !entered)
    child_fail(report_fd, "preparing the container's root: " + entered.error().message);
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.c_str(), spec.hostname.size()) < 0)
    child_fail(report_fd, "sethostname failed");
  if (!spec.domainname.empty() &&
      ::setdomainname(spec.domainname.c_str(), spec.domainname.size()) < 0)
    child_fail(report_fd, "setdomainname failed");
  // As runc: a working directory that does not exist is made, as root, before the user changes.
  if (auto made =
          sys::exists(spec.process.cwd) ? Result<void>() : sys::mkdir_p(spec.process.cwd, 0755);
      !made)
    child_fail(report_fd,
               "making the working directory " + spec.process.cwd + ": " + made.error().message);
  set_rlimits(spec.process, report_fd);
  enter_user_namespace(userns_fd, report_fd);
  UniqueFd terminal;
  std::string program = prepare_process(spec.process, seccomp, stdio, report_fd, terminal);
  (void)sys::write_all(report_fd, std::string_view(&kReady, 1));
  char go;
  if (::read(start_fd, &go, 1) != 1) ::_exit(0);  // the agent gave up on this container
  exec_process(spec.process, program, report_fd);
}

// An exec'd process joins the init's namespaces; joining its mount namespace also makes the
// container's root this process's root.
[[noreturn]] void run_exec(pid_t init, const oci::Process& process, const std::string& seccomp,
                           ChildStdio stdio, int report_fd) {
  if (::setsid() < 0) child_fail(report_fd, "setsid failed");
  set_oom_score_adj(process, report_fd);
  const std::string init_ns = "/proc/" + std::to_string(init) + "/ns/";
  // The init's user namespace when it has its own (opened before the mount namespace hides
  // /proc/INIT of the guest).
  UniqueFd userns;
  struct stat own, theirs;
  if (::stat("/proc/self/ns/user", &own) == 0 && ::stat((init_ns + "user").c_str(), &theirs) == 0 &&
      own.st_ino != theirs.st_ino) {
    auto opened = sys::open(init_ns + "user", O_RDONLY);
    if (!opened) child_fail(report_fd, "opening the container's user namespace failed");
    userns = std::move(*opened);
  }
  for (const auto& [name, type] : {std::pair{"ipc", CLONE_NEWIPC},
                                   {"uts", CLONE_NEWUTS},
                                   {"cgroup", CLONE_NEWCGROUP},
                                   {"mnt", CLONE_NEWNS}}) {
    auto ns = sys::open(init_ns + name, O_RDONLY);
    if (!ns || ::setns(ns->get(), type) < 0)
      child_fail(report_fd, std::string("joining the container's ") + name + " namespace failed");
  }
  set_rlimits(process, report_fd);
  enter_user_namespace(userns.get(), report_fd);
  UniqueFd terminal;
  std::string program = prepare_process(process, seccomp, stdio, report_fd, terminal);
  exec_process(process, program, report_fd);
}

Result<std::string> find_executable(const std::string& program,
                                    const std::vector<std::string>& env) {
  auto executable = [](const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) {
    if (executable(program)) return program;
    // As execve says: a directory or a file without execute permission cannot be run (Podman
    // exits 126 on "permission denied", 127 on "no such file").
    struct stat st;
    if (::stat(program.c_str(), &st) == 0)
      return fail(EACCES, "exec: \"" + program + "\": permission denied");
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

}  // namespace vessel::agent

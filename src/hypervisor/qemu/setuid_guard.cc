#include "hypervisor/qemu/setuid_guard.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/log.h"
#include "common/sys.h"

namespace vessel::hypervisor {

namespace {

constexpr uint64_t kSetIdBits = S_ISUID | S_ISGID;

struct ContextDeleter {
  void operator()(void* context) const { seccomp_release(context); }
};

// The calls that may set a mode, and which argument holds it.
struct ModeCall {
  int number;
  unsigned mode_argument;
};
const ModeCall kModeCalls[] = {
    {SCMP_SYS(chmod), 1},  {SCMP_SYS(fchmod), 1}, {SCMP_SYS(fchmodat), 2}, {SCMP_SYS(open), 2},
    {SCMP_SYS(openat), 3}, {SCMP_SYS(creat), 1},  {SCMP_SYS(mkdir), 1},    {SCMP_SYS(mkdirat), 2},
    {SCMP_SYS(mknod), 1},  {SCMP_SYS(mknodat), 2}};

std::string link_target(int proc, const std::string& path) {
  char target[4096];
  ssize_t n = ::readlinkat(proc, path.c_str(), target, sizeof target - 1);
  return n > 0 ? std::string(target, n) : std::string();
}

// A NUL-terminated path at `address` in the process's memory, at most 4 KiB.
std::string path_at(int proc, pid_t pid, uint64_t address) {
  UniqueFd memory(::openat(proc, (std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
  if (!memory) return {};
  char buffer[4096];
  ssize_t n = ::pread(memory.get(), buffer, sizeof buffer, static_cast<off_t>(address));
  if (n <= 0) return {};
  std::string text(buffer, static_cast<size_t>(n));
  size_t end = text.find('\0');
  return end == std::string::npos ? std::string() : text.substr(0, end);
}

}  // namespace

Result<void> install_setuid_guard(int socket) {
  std::unique_ptr<void, ContextDeleter> context(seccomp_init(SCMP_ACT_ALLOW));
  if (!context) return fail("seccomp_init failed");
  for (const auto& call : kModeCalls)
    for (uint64_t bits : {uint64_t{S_ISUID}, uint64_t{S_ISGID}, kSetIdBits}) {
      scmp_arg_cmp mode = {call.mode_argument, SCMP_CMP_MASKED_EQ, kSetIdBits, bits};
      if (int added = seccomp_rule_add_array(context.get(), SCMP_ACT_NOTIFY, call.number, 1, &mode);
          added < 0)
        return fail(-added, "seccomp: a rule for the setuid guard");
    }
  if (int loaded = seccomp_load(context.get()); loaded < 0)
    return fail(-loaded, "loading QEMU's setuid guard");
  UniqueFd listener(seccomp_notify_fd(context.get()));
  if (!listener) return fail("the setuid guard has no listener");
  return sys::send_fd(socket, listener.get(), "setuid-guard");
}

void SetuidGuard::serve() {
  struct seccomp_notif request {};
  if (::ioctl(m_listener.get(), SECCOMP_IOCTL_NOTIF_RECV, &request) < 0) {
    if (errno != EINTR && errno != ENOENT)
      log::warning(std::string("the setuid guard: ") + std::strerror(errno));
    return;
  }
  const int syscall = request.data.nr;
  const auto* args = reinterpret_cast<const uint64_t*>(request.data.args);
  Target target = target_of(static_cast<pid_t>(request.pid), syscall, args);
  uint64_t mode = 0;
  for (const auto& call : kModeCalls)
    if (call.number == syscall) mode = args[call.mode_argument];
  // A setgid directory only hands its group down to what is made in it: harmless, and what a
  // host directory shared by a group often is.
  struct stat st;
  bool directory =
      syscall == SCMP_SYS(mkdir) || syscall == SCMP_SYS(mkdirat) ||
      (!target.link.empty() && ::fstatat(m_proc.get(), target.link.c_str(), &st, 0) == 0 &&
       S_ISDIR(st.st_mode));
  bool allow = !target.path.empty() && (allowed(target.path) || (directory && !(mode & S_ISUID)));
  struct seccomp_notif_resp response {};
  response.id = request.id;
  // Only while the call still waits is what was read about it its own.
  if (::ioctl(m_listener.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &request.id) < 0) return;
  if (allow) {
    response.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  } else {
    response.error = -EPERM;
    log::info("refused a setuid or setgid bit on " +
              (target.path.empty() ? std::string("a file") : target.path) +
              " (a share that takes none)");
  }
  (void)::ioctl(m_listener.get(), SECCOMP_IOCTL_NOTIF_SEND, &response);
}

SetuidGuard::Target SetuidGuard::target_of(pid_t pid, int syscall, const uint64_t* args) const {
  const int proc = m_proc.get();
  const std::string task = std::to_string(pid);
  auto descriptor = [&](uint64_t fd) {
    std::string link = task + "/fd/" + std::to_string(static_cast<int>(fd));
    return Target{link_target(proc, link), link};
  };
  // A path: absolute as QEMU sees it, or through its own descriptor (/proc/self/fd/N, how
  // QEMU's 9p server changes modes without following a link the guest made).
  auto path = [&](uint64_t address, const std::string& base) -> Target {
    std::string name = path_at(proc, pid, address);
    if (name.starts_with("/proc/self/fd/") && name.find('/', 14) == std::string::npos)
      return descriptor(std::strtoull(name.c_str() + 14, nullptr, 10));
    if (name.starts_with("/")) return {name, ""};
    return {base.empty() || name.empty() ? std::string() : base + "/" + name, ""};
  };
  auto relative = [&](uint64_t dirfd, uint64_t address) {
    int fd = static_cast<int>(dirfd);
    return path(address,
                fd == AT_FDCWD ? link_target(proc, task + "/cwd") : descriptor(dirfd).path);
  };
  if (syscall == SCMP_SYS(fchmod)) return descriptor(args[0]);
  if (syscall == SCMP_SYS(fchmodat) || syscall == SCMP_SYS(openat) ||
      syscall == SCMP_SYS(mkdirat) || syscall == SCMP_SYS(mknodat))
    return relative(args[0], args[1]);
  return relative(AT_FDCWD, args[0]);  // chmod, open, creat, mkdir, mknod
}

bool SetuidGuard::allowed(const std::string& path) const {
  if (path.find("/../") != std::string::npos || path.ends_with("/..")) return false;
  for (const auto& root : m_allowed)
    if (path == root || path.starts_with(root + "/")) return true;
  return false;
}

}  // namespace vessel::hypervisor

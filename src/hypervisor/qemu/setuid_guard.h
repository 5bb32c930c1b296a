// No setuid or setgid bit reaches a host directory through a volume or a bound file: QEMU's 9p
// server serves them with the owners and modes the guest sets (passthrough, as runc gives them),
// but a system call of QEMU's that would give a file S_ISUID or S_ISGID (chmod, fchmod, fchmodat;
// a mode on open, mkdir or mknod) stops at a seccomp filter and waits for the shim, which lets it
// go on only for a file under a share that takes such bits (the container's root filesystem and
// pod members' roots, as under runc) or for the setgid bit of a directory (it only hands its group
// down), and answers EPERM otherwise. Device nodes never reach the
// host either: QEMU has no CAP_MKNOD where the host's devices are. Every other call runs
// unstopped, so the guard costs nothing but those rare calls.
//
// What it guards against is the guest: 9p requests become QEMU's calls on QEMU's own descriptors,
// which the guest cannot swap. It is no boundary against a QEMU the guest has taken over (that is
// what the jail is for): the file is looked up from the stopped call's arguments and the call then
// continues (seccomp_unotify(2) on SECCOMP_USER_NOTIF_FLAG_CONTINUE).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::hypervisor {

// In QEMU's child, last before exec: installs the filter and sends its listener on `socket`.
Result<void> install_setuid_guard(int socket);

class SetuidGuard {
 public:
  SetuidGuard() = default;
  // `listener` from install_setuid_guard; the bits are allowed under `allowed` (paths in QEMU's
  // jail, each a directory whose whole tree takes them). `proc`: the /proc where QEMU's threads
  // are, kept open (the shim's /proc is gone once it shows Podman the container's root).
  SetuidGuard(UniqueFd listener, UniqueFd proc, std::vector<std::string> allowed)
      : m_listener(std::move(listener)), m_proc(std::move(proc)), m_allowed(std::move(allowed)) {}
  int fd() const { return m_listener.get(); }
  // Answers the call waiting now, if any.
  void serve();

 private:
  // The file a stopped call would give the bits to: its path in QEMU's jail (empty if not
  // known) and, when the call names it by a descriptor, that descriptor's link under /proc.
  struct Target {
    std::string path;
    std::string link;
  };
  Target target_of(pid_t pid, int syscall, const uint64_t* args) const;
  bool allowed(const std::string& path) const;

  UniqueFd m_listener;
  UniqueFd m_proc;
  std::vector<std::string> m_allowed;
};

}  // namespace vessel::hypervisor

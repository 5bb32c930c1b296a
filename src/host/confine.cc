#include "host/confine.h"

#include <linux/capability.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "common/scope_exit.h"

namespace vessel {

Result<void> drop_capabilities(std::initializer_list<int> kept) {
  uint64_t mask = 0;
  for (int cap : kept) mask |= uint64_t{1} << cap;
  for (int cap = 0; cap <= 63; ++cap)
    if (!(mask >> cap & 1) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      return fail_errno("dropping capability " + std::to_string(cap));
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    return fail_errno("clearing ambient capabilities");
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(mask);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(mask >> 32);
  // SAFETY: capset takes a v3 header and two data words (64 capability bits).
  if (::syscall(SYS_capset, &header, data) < 0) return fail_errno("capset");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail_errno("no_new_privs");
  return {};
}

Result<void> refuse_privileged_syscalls() {
  scmp_filter_ctx filter = ::seccomp_init(SCMP_ACT_ALLOW);
  if (!filter) return fail("seccomp_init failed");
  ScopeExit release([&] { ::seccomp_release(filter); });
  for (const char* name : {"mount",
                           "umount2",
                           "pivot_root",
                           "chroot",
                           "unshare",
                           "setns",
                           "ptrace",
                           "process_vm_readv",
                           "process_vm_writev",
                           "bpf",
                           "perf_event_open",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "kexec_load",
                           "kexec_file_load",
                           "userfaultfd",
                           "open_by_handle_at",
                           "name_to_handle_at",
                           "swapon",
                           "swapoff",
                           "reboot",
                           "acct",
                           "settimeofday",
                           "clock_settime",
                           "clock_adjtime",
                           "adjtimex",
                           "quotactl",
                           "lookup_dcookie",
                           "fsopen",
                           "fsmount",
                           "fsconfig",
                           "fspick",
                           "move_mount",
                           "open_tree",
                           "mount_setattr",
                           "iopl",
                           "ioperm",
                           "syslog",
                           "vhangup",
                           "personality"}) {
    int number = ::seccomp_syscall_resolve_name(name);
    if (number == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (::seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), number, 0) < 0)
      return fail(std::string("seccomp: cannot refuse ") + name);
  }
  if (::seccomp_load(filter) < 0) return fail("seccomp_load failed");
  return {};
}

}  // namespace vessel

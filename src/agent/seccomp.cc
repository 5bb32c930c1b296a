#include "agent/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vessel::agent {

Result<void> load_seccomp(std::string_view program) {
  if (program.empty()) return {};
  if (program.size() % sizeof(sock_filter) != 0 ||
      program.size() / sizeof(sock_filter) > BPF_MAXINSNS)
    return fail("seccomp: the compiled filter has an invalid size");
  sock_fprog filter{static_cast<unsigned short>(program.size() / sizeof(sock_filter)),
                    reinterpret_cast<sock_filter*>(const_cast<char*>(program.data()))};
  // SAFETY: filter points at program.size() bytes of sock_filter instructions, checked above.
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) < 0)
    return fail_errno("seccomp: loading the filter");
  return {};
}

}  // namespace vessel::agent

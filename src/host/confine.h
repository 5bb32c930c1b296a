// Taking privileges away from a process of ours before it handles what the guest sends: QEMU in
// its jail, and the shim once the VM runs. Capabilities go (all but `kept`, bounding set too,
// ambient ones cleared), no_new_privs is set, and a seccomp filter refuses the calls neither has
// any business making (mounts, namespaces, ptrace, bpf, modules, kexec, keyrings …) with EPERM.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "common/result.h"

namespace vessel {

Result<void> drop_capabilities(std::initializer_list<int> kept);
Result<void> refuse_privileged_syscalls();

}  // namespace vessel

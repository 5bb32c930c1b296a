// QEMU's jail, after Firecracker's jailer: QEMU starts in new user, mount, pid, ipc, uts and
// network namespaces, as root of a user namespace that maps only the ids its parent has (so it
// holds no capability in the host's user namespace), inside a read-only tmpfs root that holds
// just what it runs from (/usr, the loader's links, the guest kernel and initrd, a few /dev
// nodes, a /proc of its own pid namespace with nothing but pids) and what it serves (each share
// under /vessel/share/<tag>, nosuid and nodev). It keeps only the capabilities its 9p server needs,
// runs with no_new_privs, and under a seccomp filter that refuses the calls a VMM never makes
// (mount, ptrace, bpf, module and kexec calls …), on top of QEMU's own -sandbox.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::hypervisor {

struct JailBind {
  std::string source;  // a host path
  std::string target;  // inside the jail
  bool directory = false;
  bool readonly = true;
  // A descriptor (in the child) the caller opened for `source` when it checked it: the path must
  // still lead to that very file (a mount cannot be made from another namespace's descriptor).
  int expected = -1;
};

struct JailPlan {
  std::vector<JailBind> binds;
  // Empty writable directories of the jail's own (small tmpfs mounts): the pod shares.
  std::vector<std::string> scratch;
  std::vector<JailBind> scratch_binds;  // bound inside the scratch directories once they exist
  std::vector<std::string> empty_dirs;  // made in the read-only root (a share with nothing in it)
  std::vector<std::string> devices;     // host device nodes bound at the same path (/dev/null …)
};

// The clone flags for QEMU's namespaces.
int jail_namespaces();
// In the parent, once the child exists: maps in its user namespace exactly the uids and gids
// this process has (each to itself).
Result<void> write_identity_maps(pid_t child);
// In the child, before exec: builds the root, moves into it, drops privileges.
Result<void> enter_jail(const JailPlan& plan);

}  // namespace vessel::hypervisor

// One container inside the guest: created (namespaces, root, user, stdio) but held before exec
// until start() is called, as the OCI lifecycle requires.
#pragma once

#include <sys/types.h>

#include <string>

#include "agent/mounts.h"
#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::agent {

struct ContainerStdio {
  UniqueFd stdin_write;  // the container's stdin; with a terminal, the pty master
  UniqueFd stdout_read;  // with a terminal, a second descriptor of the pty master
  UniqueFd stderr_read;  // invalid with a terminal
};

// Where a container goes in the VM: its root filesystem, its cgroup (agent/cgroup.h), and for a
// pod member the pod's first container, whose ipc and uts namespaces it joins where its spec
// names a namespace path (the guest has one network namespace: every container is in it).
struct Placement {
  RootSource root;
  std::string cgroup = "container";
  pid_t pod_init = -1;
};

class Container {
 public:
  // Forks the container's init in new pid, mount, uts and ipc namespaces (or the pod's), sets up
  // its root and user, and resolves its program; fails with the reason if any step fails.
  // `seccomp` is the compiled filter (empty for none); exec'd processes get it too.
  static Result<Container> create(const oci::Spec& spec, const Placement& placement,
                                  const std::vector<channel::GuestBind>& binds,
                                  const std::string& seccomp, ContainerStdio& stdio);

  pid_t pid() const { return m_pid; }
  // Runs another process in the container's namespaces and root (`exec`); returns its pid once
  // it has exec'd, or why it could not.
  Result<pid_t> exec(const oci::Process& process, ContainerStdio& stdio) const;
  // Lets the process exec; fails if the exec itself failed.
  Result<void> start();
  Result<void> signal(int signal) const;
  const std::string& cgroup() const { return m_cgroup; }
  // Whether it shares its pod's pid namespace: its processes outlive its init unless ended.
  bool shares_pid() const { return m_shares_pid; }

 private:
  pid_t m_pid = -1;
  bool m_shares_pid = false;
  std::string m_cgroup;
  UniqueFd m_start_write;
  UniqueFd m_report_read;
  std::string m_seccomp;
};

// Looks up `program` in the PATH from `env` the way execvp would, inside the current root.
Result<std::string> find_executable(const std::string& program,
                                    const std::vector<std::string>& env);

}  // namespace vessel::agent

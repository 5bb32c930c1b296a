// What a container's process does between fork and exec, in the child (container.cc forks it):
// joins or makes its namespaces, enters the container's root, sets its identity, limits and
// stdio, reports on the report pipe, and execs. Every failure is reported there and ends the
// child.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "agent/mounts.h"
#include "common/oci_spec.h"
#include "common/unique_fd.h"

namespace vessel::agent {

// The child writes 'R' when ready to exec, or an error message, on the report pipe.
constexpr char kReady = 'R';

// The child's stdio: pipes to the agent, replaced by a pty made in the container's own devpts
// when the process asks for a terminal (its master goes back to the agent over a socket).
struct ChildStdio {
  int in, out, err, master_socket;
};

// The pod's namespaces a member's spec names by path, as file descriptors of the pod's init.
struct PodNamespaces {
  std::vector<std::pair<UniqueFd, int>> joined;     // (namespace, CLONE_NEW* type)
  unsigned long own = CLONE_NEWUTS | CLONE_NEWIPC;  // those the member gets new
  UniqueFd pid;  // the pod's pid namespace, for a member that shares it
};

// The container's init: waits on start_fd for `start` once it reported ready.
[[noreturn]] void run_init(const oci::Spec& spec, const RootSource& root, const PodNamespaces& pod,
                           const std::vector<channel::GuestBind>& binds, const std::string& seccomp,
                           ChildStdio stdio, int userns_fd, int start_fd, int report_fd);
// A process exec'd into the container whose init is `init`.
[[noreturn]] void run_exec(pid_t init, const oci::Process& process, const std::string& seccomp,
                           ChildStdio stdio, int report_fd);

}  // namespace vessel::agent

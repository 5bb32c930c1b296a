// One sandbox: the VM booted for a container, the agent connection, the stdio relay, the
// control socket the CLI talks to, and the exit status the shim exits with.
//
// The shim's pid is "the container" for conmon, so run_sandbox returns the exit code the shim
// must exit with: the workload's, or 128+N when it was killed by signal N.
#pragma once

#include "common/unique_fd.h"
#include "shim/options.h"

namespace vessel::shim {

// Boots the VM and creates the container, reporting success or the error on ready_fd, then
// relays until the container exits. Returns the shim's exit code.
int run_sandbox(const ShimOptions& options, UniqueFd state_dir, UniqueFd ready_fd);

}  // namespace vessel::shim

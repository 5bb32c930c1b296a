// The processes of one container, for `vessel ps`: those in the pid namespace of its init, as
// an answer to ps carries them (common/channel/agent_messages.h).
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/channel/agent_messages.h"
#include "common/result.h"

namespace vessel::agent {

// Pids as the container's own namespace numbers them, sorted; at most kMaxGuestProcesses,
// commands printable and at most kMaxGuestCommand bytes.
Result<std::vector<channel::GuestProcess>> list_processes(pid_t init);

}  // namespace vessel::agent

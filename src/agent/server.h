// The agent's side of the channel: answers the shim's messages, relays the container's stdio
// with flow control, reaps every child (the agent is PID 1), and reports the container's exit
// once its output has been sent.
#pragma once

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::agent {

// Serves until the shim asks for shutdown or goes away.
Result<void> serve(UniqueFd channel_fd);

}  // namespace vessel::agent

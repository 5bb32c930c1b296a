// The processes of one container, for `vessel ps`: those in the pid namespace of its init, as
// the `processes` message carries them (common/channel/messages.h).
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace vessel::agent {

// Pids as the container's own namespace numbers them, sorted; at most kMaxGuestProcesses,
// commands printable and at most kMaxGuestCommand bytes.
Result<nlohmann::json> list_processes(pid_t init);

}  // namespace vessel::agent

// Talks to a running shim over <state>/shim.sock: one request line, one reply line
// (host/control_messages.h).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"
#include "host/control_messages.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

// Reads the next line from the shim into `buffer` (which keeps what follows it); bounded, and
// within `timeout` when one is given.
Result<std::string> read_line(int socket, std::string& buffer,
                              std::optional<std::chrono::milliseconds> timeout = {});

// The shim's reply; a refusal is an error with the shim's reason.
Result<control::Reply> shim_request(const std::string& socket_path, const control::Request& request,
                                    std::chrono::seconds timeout);
// The same, to the shim that runs `state`'s container: its own, or for a pod member its
// sandbox's, with the member named.
Result<control::Reply> shim_request(const StateStore& store, const ContainerState& state,
                                    control::RequestOp op, std::chrono::seconds timeout);

}  // namespace vessel::runtime

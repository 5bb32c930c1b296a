// Talks to a running shim over <state>/shim.sock: one JSON request line, one JSON reply.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

// Reads the next JSON object line from the shim into `buffer` (which keeps what follows it);
// bounded, and within `timeout` when one is given.
Result<nlohmann::json> read_json_line(int socket, std::string& buffer,
                                      std::optional<std::chrono::milliseconds> timeout = {});

Result<nlohmann::json> shim_request(const std::string& socket_path, const nlohmann::json& request,
                                    std::chrono::seconds timeout);
// The same, to the shim that runs `state`'s container: its own, or for a pod member its
// sandbox's, with the member named.
Result<nlohmann::json> shim_request(const StateStore& store, const ContainerState& state,
                                    nlohmann::json request, std::chrono::seconds timeout);

}  // namespace vessel::runtime

// Talks to a running shim over <state>/shim.sock: one JSON request line, one JSON reply.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace vessel::runtime {

Result<nlohmann::json> shim_request(const std::string& socket_path, const nlohmann::json& request,
                                    std::chrono::seconds timeout);

}  // namespace vessel::runtime

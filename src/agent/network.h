// The guest's network, made to look like the container's namespace on the host: each NIC
// (found by the MAC the shim gave it) takes the name, MTU, addresses and routes of the
// interface it stands in for; loopback comes up.
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace vessel::agent {

Result<void> configure_network(const nlohmann::json& description);

}  // namespace vessel::agent

// The guest's network, made to look like the container's namespace on the host: each NIC
// (found by the MAC the shim gave it) takes the name, MTU, addresses and routes of the
// interface it stands in for; loopback comes up.
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace vessel::agent {

Result<void> configure_network(const nlohmann::json& description);
// Gives the guest's network cards, in the order the VM has them, these MACs ("52:54:…").
Result<void> assign_macs(const nlohmann::json& macs);

}  // namespace vessel::agent

// The guest's network, made to look like the container's namespace on the host: each NIC
// (found by the MAC the shim gave it) takes the name, MTU, addresses and routes of the
// interface it stands in for; loopback comes up.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::agent {

Result<void> configure_network(const nlohmann::json& description);
// The guest's network cards, loopback left out, in the order the VM has them (by index).
std::vector<std::string> network_cards();
// Gives `cards` (network_cards()) these MACs ("52:54:…"), the first MAC to the first card.
Result<void> assign_macs(const nlohmann::json& macs, const std::vector<std::string>& cards);

}  // namespace vessel::agent

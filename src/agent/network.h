// The guest's network, made to look like the container's namespace on the host: each NIC
// (found by the MAC the shim gave it) takes the name, MTU, addresses and routes of the
// interface it stands in for; loopback comes up.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/channel/host_messages.h"
#include "common/result.h"

namespace vessel::agent {

// Cards whose MAC the agent set itself (assign_macs): MAC ("52:54:…", lower case), name.
using KnownCards = std::vector<std::pair<std::string, std::string>>;

// `known` spares a restored guest the search of sysfs for each card's MAC; a card renamed is
// renamed there too.
Result<void> configure_network(const channel::GuestNetwork& network, KnownCards& known);
// The guest's network cards, loopback left out, in the order the VM has them (by index).
std::vector<std::string> network_cards();
// Gives `cards` (network_cards()) these MACs ("52:54:…"), the first MAC to the first card.
Result<KnownCards> assign_macs(const std::vector<std::string>& macs,
                               const std::vector<std::string>& cards);

}  // namespace vessel::agent

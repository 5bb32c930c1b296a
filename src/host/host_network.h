// The host side of a container's network, carried into its VM (Kata's "tcfilter" model): a tap
// per interface of the container's network namespace, traffic mirrored both ways between them
// with tc ingress + mirred, and a description of the interfaces and routes from which the agent
// rebuilds the same network in the guest. Used by the shim at create and, for an interface that
// arrives only after create (Docker's prestart hook moves its veth in), by `vessel start`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/channel/host_messages.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::host_network {

// The VM's taps are named vessel0, vessel1, ... after the interfaces they stand in for; a
// namespace with none gets only the standby tap (shim/network.h), which is therefore tap 0.
std::string tap_name(size_t index);
inline const std::string kStandbyTap = "vessel0";

// The current network namespace's links as `ip -j addr show` prints them.
Result<nlohmann::json> links();
// Whether a link is one of the VM's taps.
bool is_tap(const nlohmann::json& link);
Result<UniqueFd> create_tap(const std::string& name);
// Sets the tap's MTU to the link's, brings it up, and mirrors the two into each other.
Result<void> plumb(const nlohmann::json& link, const std::string& tap, unsigned mtu);
// {name, mac, mtu, addresses:[{family, address, prefix}]} for the guest NIC with `mac`.
channel::GuestInterface describe_interface(const nlohmann::json& link, const std::string& mac);
// The namespace's routes the guest's kernel does not make itself.
Result<std::vector<channel::GuestRoute>> describe_routes();

}  // namespace vessel::host_network

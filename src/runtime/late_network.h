// An interface that reaches the container's network namespace after create: Docker's prestart
// hook (libnetwork-setkey) moves the container's veth in once `create` returned, where runc has
// made the namespace and waits. The shim gave the VM a standby tap for such a namespace
// (shim/network.h) and named its guest MAC in STATE/ID/standby-nic; `start` plumbs the first
// new interface to it and hands the agent its description.
#pragma once

#include <optional>

#include "common/channel/host_messages.h"
#include "common/result.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

// The network description for the agent (host/host_network.h), or none when there is no
// standby tap or nothing arrived for it.
Result<std::optional<channel::GuestNetwork>> plumb_late_network(const StateStore& store,
                                                                const ContainerState& state);

}  // namespace vessel::runtime

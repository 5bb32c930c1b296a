// The container's network, carried into the VM (host/host_network.h): the shim joins the
// network namespace Podman prepared, or makes a new one when the spec names none, and gives QEMU
// one tap per interface there. A new namespace is empty at create, and only a host hook run
// between create and start can add an interface to it: Docker moves its veth in with a prestart
// hook. For such a spec the VM gets one standby tap, which `vessel start` plumbs to whatever
// interface arrived by then (runtime/late_network.h); without hooks the guest has loopback only,
// as under runc.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/channel/host_messages.h"
#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::shim {

struct Tap {
  UniqueFd fd;
  std::string mac;  // the guest NIC gets the MAC of the interface it stands in for
};

struct Network {
  std::vector<Tap> taps;
  std::string standby_mac;  // the standby tap's guest NIC, when the namespace was made here
  // {"interfaces":[{name, mac, mtu, addresses:[{family, address, prefix}]}], "routes":[...]}
  channel::GuestNetwork description;
};

// Joins (or creates) the spec's network namespace and plumbs each interface to a new tap;
// `hooked`: the spec has prestart or createRuntime hooks.
Result<Network> setup_network(const oci::Spec& spec, bool hooked);

}  // namespace vessel::shim

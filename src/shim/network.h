// The container's network, carried into the VM (Kata's "tcfilter" model): the shim joins the
// network namespace Podman prepared (or makes an empty one for --network=none), gives QEMU one
// tap per interface there, mirrors traffic between each tap and Podman's interface with tc
// ingress + mirred, and describes the interfaces and routes so that the agent makes the guest's
// network look like the one a runc container would see.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
  // {"interfaces":[{name, mac, mtu, addresses:[{family, address, prefix}]}], "routes":[...]}
  nlohmann::json description;
};

// Joins (or creates) the spec's network namespace and plumbs each interface to a new tap.
Result<Network> setup_network(const oci::Spec& spec);

}  // namespace vessel::shim

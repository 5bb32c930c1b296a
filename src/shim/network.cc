#include "shim/network.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/random.h>

#include <cstdio>

#include "common/sys.h"
#include "host/host_network.h"

namespace vessel::shim {

using nlohmann::json;

namespace {

Result<void> join_namespace(const oci::Namespace& network) {
  if (network.path.empty()) {
    if (::unshare(CLONE_NEWNET) < 0) return fail_errno("creating a network namespace");
    return {};
  }
  UniqueFd ns = TRY(sys::open(network.path, O_RDONLY));
  if (::setns(ns.get(), CLONE_NEWNET) < 0)
    return fail_errno("joining the network namespace " + network.path);
  return {};
}

// A locally administered unicast address.
Result<std::string> random_mac() {
  unsigned char bytes[6];
  if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes) return fail_errno("getrandom");
  bytes[0] = (bytes[0] & 0xfe) | 0x02;
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return std::string(text);
}

}  // namespace

Result<Network> setup_network(const oci::Spec& spec, bool hooked) {
  const oci::Namespace* namespace_ = spec.find_namespace("network");
  if (!namespace_) return fail("network: the container has no network namespace");
  TRY(join_namespace(*namespace_).map_error(context("network")));
  Network network;
  for (const auto& link : TRY(host_network::links())) {
    if (link.value("ifname", "").empty() || link.value("link_type", "") == "loopback") continue;
    std::string tap_name = host_network::tap_name(network.taps.size());
    // The guest NIC gets the MAC of the interface it stands in for.
    Tap tap{TRY(host_network::create_tap(tap_name)), link.value("address", "")};
    TRY(host_network::plumb(link, tap_name, link.value("mtu", 1500u)));
    network.description.interfaces.push_back(host_network::describe_interface(link, tap.mac));
    network.taps.push_back(std::move(tap));
  }
  if (namespace_->path.empty() && hooked) {
    network.standby_mac = TRY(random_mac());
    network.taps.push_back(
        {TRY(host_network::create_tap(host_network::kStandbyTap)), network.standby_mac});
  }
  network.description.routes = TRY(host_network::describe_routes());
  return network;
}

}  // namespace vessel::shim

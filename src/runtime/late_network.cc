#include "runtime/late_network.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sys.h"
#include "host/host_network.h"
#include "host/process.h"

namespace vessel::runtime {

using nlohmann::json;

namespace {

// In the shim's network namespace: plumbs the first interface that is not a tap.
Result<json> plumb_in_namespace(const std::string& mac) {
  channel::GuestNetwork network;
  for (const auto& link : TRY(host_network::links())) {
    if (link.value("ifname", "").empty() || link.value("link_type", "") == "loopback" ||
        host_network::is_tap(link))
      continue;
    TRY(host_network::plumb(link, host_network::kStandbyTap, link.value("mtu", 1500u)));
    network.interfaces.push_back(host_network::describe_interface(link, mac));
    break;  // one standby tap
  }
  if (network.interfaces.empty()) return json();
  network.routes = TRY(host_network::describe_routes());
  return channel::write_network(network);
}

}  // namespace

Result<std::optional<channel::GuestNetwork>> plumb_late_network(const StateStore& store,
                                                                const ContainerState& state) {
  const std::string marker = store.dir(state.id) + "/standby-nic";
  if (!sys::exists(marker)) return std::nullopt;
  std::string mac = TRY(sys::read_file(marker, 64));
  // The shim's namespace, through a pidfd taken while its start time still matches.
  UniqueFd shim(static_cast<int>(::syscall(SYS_pidfd_open, state.pid, 0)));
  if (!shim || sys::process_start_time(state.pid) != state.pid_start_time)
    return fail(ESRCH, "the container's shim is gone");
  // A child enters the namespace: this process runs the poststart hooks in the host's.
  std::string plumbed = TRY(in_namespace(shim.get(), CLONE_NEWNET, [&]() -> Result<std::string> {
                              return TRY(plumb_in_namespace(mac)).dump();
                            }).map_error(context("network")));
  ::unlink(marker.c_str());
  // The child's description crossed as JSON; it is read back as the shim would read it.
  json network = json::parse(plumbed, nullptr, false);
  if (network.is_null()) return std::nullopt;
  return TRY(channel::read_network(network).map_error(context("the late network")));
}

}  // namespace vessel::runtime

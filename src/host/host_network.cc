#include "host/host_network.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

#include "common/sys.h"
#include "host/process.h"

namespace vessel::host_network {

using nlohmann::json;

namespace {

// Absolute paths: the runtime may run without PATH.
constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kTc = "/usr/sbin/tc";

Result<json> ip_json(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kIp, "-j"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output = TRY(capture_output(argv));
  json parsed = json::parse(output.empty() ? "[]" : output, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array())
    return fail(EIO, "ip " + args[0] + ": unexpected output");
  return parsed;
}

// Every frame arriving on `from` leaves through `to`, before the namespace's IP stack sees it.
Result<void> mirror(const std::string& from, const std::string& to) {
  TRY(capture_output({kTc, "qdisc", "add", "dev", from, "ingress"}));
  TRY(capture_output(
      {kTc,     "filter", "add", "dev", from,     "parent", "ffff:",  "protocol", "all", "u32",
       "match", "u8",     "0",   "0",   "action", "mirred", "egress", "redirect", "dev", to}));
  return {};
}

}  // namespace

std::string tap_name(size_t index) { return "vessel" + std::to_string(index); }

Result<json> links() { return ip_json({"addr", "show"}); }

bool is_tap(const json& link) { return link.value("ifname", "").starts_with("vessel"); }

Result<UniqueFd> create_tap(const std::string& name) {
  UniqueFd tun =
      TRY(sys::open("/dev/net/tun", O_RDWR).map_error(context("creating a tap for the VM")));
  ifreq request{};
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  // SAFETY: TUNSETIFF reads an ifreq naming the device and its flags.
  if (::ioctl(tun.get(), TUNSETIFF, &request) < 0) return fail_errno("TUNSETIFF " + name);
  return tun;
}

Result<void> plumb(const json& link, const std::string& tap, unsigned mtu) {
  std::string name = link.value("ifname", "");
  TRY(capture_output({kIp, "link", "set", tap, "mtu", std::to_string(mtu), "up"}));
  TRY(mirror(name, tap));
  TRY(mirror(tap, name));
  return {};
}

channel::GuestInterface describe_interface(const json& link, const std::string& mac) {
  channel::GuestInterface interface {
    link.value("ifname", ""), mac, link.value("mtu", 1500u), {}
  };
  for (const auto& address : link.value("addr_info", json::array())) {
    std::string family = address.value("family", "");
    // Link-local and autoconfigured (dynamic) IPv6 addresses the guest makes itself.
    if (family != "inet" && (family != "inet6" || address.value("scope", "") != "global" ||
                             address.value("dynamic", false)))
      continue;
    interface.addresses.push_back(
        {family, address.value("local", ""), address.value("prefixlen", 0u)});
  }
  return interface;
}

Result<std::vector<channel::GuestRoute>> describe_routes() {
  std::vector<channel::GuestRoute> routes;
  for (const char* family : {"-4", "-6"}) {
    for (const auto& route : TRY(ip_json({family, "route", "show"}))) {
      // Routes the kernel derives from an address are made again by the guest's kernel.
      // Routes the guest learns from router advertisements (slirp4netns sends them) likewise.
      std::string protocol = route.value("protocol", "");
      if (protocol == "kernel" || protocol == "ra" || route.value("type", "unicast") != "unicast")
        continue;
      routes.push_back({family[1] == '4' ? "inet" : "inet6", route.value("dst", "default"),
                        route.value("gateway", ""), route.value("dev", "")});
    }
  }
  return routes;
}

}  // namespace vessel::host_network

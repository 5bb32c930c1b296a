#include "agent/network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/channel/messages.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

// One rtnetlink request: a header, a family-specific message, then attributes.
class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags, const void* body, size_t body_size) {
    m_buffer.resize(NLMSG_SPACE(body_size));
    auto* header = reinterpret_cast<nlmsghdr*>(m_buffer.data());
    header->nlmsg_type = type;
    header->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header->nlmsg_len = NLMSG_LENGTH(body_size);
    std::memcpy(NLMSG_DATA(header), body, body_size);
  }

  void attribute(uint16_t type, const void* data, size_t size) {
    size_t offset = NLMSG_ALIGN(header()->nlmsg_len);
    m_buffer.resize(offset + RTA_SPACE(size));
    auto* attribute = reinterpret_cast<rtattr*>(m_buffer.data() + offset);
    attribute->rta_type = type;
    attribute->rta_len = RTA_LENGTH(size);
    std::memcpy(RTA_DATA(attribute), data, size);
    header()->nlmsg_len = offset + RTA_SPACE(size);
  }

  Result<void> send(const std::string& what) {
    UniqueFd socket(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!socket) return fail_errno("netlink socket");
    if (::send(socket.get(), m_buffer.data(), header()->nlmsg_len, 0) < 0) return fail_errno(what);
    char reply[4096];
    ssize_t n = ::recv(socket.get(), reply, sizeof reply, 0);
    if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))))
      return fail(EIO, what + ": no answer from the kernel");
    auto* answer = reinterpret_cast<nlmsghdr*>(reply);
    if (answer->nlmsg_type == NLMSG_ERROR) {
      int error = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(answer))->error;
      if (error != 0 && error != EEXIST) return fail(error, what + ": " + std::strerror(error));
    }
    return {};
  }

 private:
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(m_buffer.data()); }
  std::vector<char> m_buffer;
};

struct Address {
  int family = AF_INET;
  unsigned char bytes[16] = {};
  size_t size = 4;
};

Result<Address> parse_address(const std::string& family, const std::string& text) {
  Address address;
  address.family = family == "inet6" ? AF_INET6 : AF_INET;
  address.size = address.family == AF_INET6 ? 16 : 4;
  if (::inet_pton(address.family, text.c_str(), address.bytes) != 1)
    return fail("bad address " + text);
  return address;
}

std::string interface_with_mac(const std::string& mac) {
  std::string found;
  if (DIR* dir = ::opendir("/sys/class/net")) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      auto address =
          sys::read_file(std::string("/sys/class/net/") + entry->d_name + "/address", 64);
      if (address && address->starts_with(mac)) found = entry->d_name;
    }
    ::closedir(dir);
  }
  return found;
}

Result<void> interface_ioctl(unsigned long request, ifreq& settings, const std::string& what) {
  UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!socket) return fail_errno("socket");
  // SAFETY: the SIOCxIFx requests read or write the ifreq named by ifr_name.
  if (::ioctl(socket.get(), request, &settings) < 0) return fail_errno(what);
  return {};
}

int interface_index(const std::string& name) {
  ifreq settings{};
  std::strncpy(settings.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (!interface_ioctl(SIOCGIFINDEX, settings, "index of " + name)) return 0;
  return settings.ifr_ifindex;
}

Result<void> set_up(const std::string& name) {
  ifreq settings{};
  std::strncpy(settings.ifr_name, name.c_str(), IFNAMSIZ - 1);
  TRY(interface_ioctl(SIOCGIFFLAGS, settings, "get flags of " + name));
  settings.ifr_flags |= IFF_UP;
  return interface_ioctl(SIOCSIFFLAGS, settings, "bring up " + name);
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

Result<void> configure_interface(const channel::GuestInterface& interface, KnownCards& known) {
  std::string mac = lower(interface.mac);
  const std::string& name = interface.name;
  auto card =
      std::find_if(known.begin(), known.end(), [&](const auto& k) { return k.first == mac; });
  std::string current = card != known.end() ? card->second : interface_with_mac(mac);
  if (current.empty()) return fail("no guest network card has MAC " + mac);
  if (current != name) {
    ifreq rename{};
    std::strncpy(rename.ifr_name, current.c_str(), IFNAMSIZ - 1);
    std::strncpy(rename.ifr_newname, name.c_str(), IFNAMSIZ - 1);
    TRY(interface_ioctl(SIOCSIFNAME, rename, "rename " + current + " to " + name));
    if (card != known.end()) card->second = name;  // a later configuration finds it renamed
  }
  ifreq mtu{};
  std::strncpy(mtu.ifr_name, name.c_str(), IFNAMSIZ - 1);
  mtu.ifr_mtu = static_cast<int>(interface.mtu);
  TRY(interface_ioctl(SIOCSIFMTU, mtu, "set the MTU of " + name));
  TRY(set_up(name));
  int index = interface_index(name);
  for (const auto& entry : interface.addresses) {
    Address address = TRY(parse_address(entry.family, entry.address));
    ifaddrmsg message{};
    message.ifa_family = address.family;
    message.ifa_prefixlen = static_cast<unsigned char>(entry.prefix);
    message.ifa_index = index;
    NetlinkRequest request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &message, sizeof message);
    request.attribute(IFA_LOCAL, address.bytes, address.size);
    request.attribute(IFA_ADDRESS, address.bytes, address.size);
    TRY(request.send("add address " + entry.address + " to " + name));
  }
  return {};
}

Result<void> add_route(const channel::GuestRoute& route) {
  const std::string& family = route.family;
  const std::string& destination = route.destination;
  rtmsg message{};
  message.rtm_family = family == "inet6" ? AF_INET6 : AF_INET;
  message.rtm_table = RT_TABLE_MAIN;
  message.rtm_protocol = RTPROT_BOOT;
  message.rtm_type = RTN_UNICAST;
  const std::string& gateway = route.gateway;
  message.rtm_scope = gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  Address destination_address;
  if (destination != "default") {
    size_t slash = destination.find('/');
    destination_address = TRY(parse_address(family, destination.substr(0, slash)));
    message.rtm_dst_len =
        slash == std::string::npos
            ? static_cast<unsigned char>(destination_address.size * 8)
            : static_cast<unsigned char>(std::stoi(destination.substr(slash + 1)));
  }
  NetlinkRequest request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &message, sizeof message);
  if (destination != "default")
    request.attribute(RTA_DST, destination_address.bytes, destination_address.size);
  if (!gateway.empty()) {
    Address address = TRY(parse_address(family, gateway));
    request.attribute(RTA_GATEWAY, address.bytes, address.size);
  }
  const std::string& device = route.device;
  if (!device.empty()) {
    int index = interface_index(device);
    request.attribute(RTA_OIF, &index, sizeof index);
  }
  return request.send("add route to " + destination);
}

}  // namespace

std::vector<std::string> network_cards() {
  std::vector<std::pair<int, std::string>> found;
  if (DIR* dir = ::opendir("/sys/class/net")) {
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name[0] == '.' || name == "lo") continue;
      if (int index = interface_index(name)) found.push_back({index, name});
    }
    ::closedir(dir);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  for (auto& card : found) names.push_back(std::move(card.second));
  return names;
}

Result<KnownCards> assign_macs(const std::vector<std::string>& macs,
                               const std::vector<std::string>& cards) {
  KnownCards assigned;
  if (macs.size() > cards.size())
    return fail("the VM has " + std::to_string(cards.size()) + " network cards, not " +
                std::to_string(macs.size()));
  for (size_t i = 0; i < macs.size(); ++i) {
    const std::string& text = macs[i];
    ifreq settings{};
    std::strncpy(settings.ifr_name, cards[i].c_str(), IFNAMSIZ - 1);
    settings.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    unsigned bytes[6];
    char end;
    if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1], &bytes[2],
                    &bytes[3], &bytes[4], &bytes[5], &end) != 6)
      return fail("not a MAC: " + channel::printable(text, 64));
    for (int b = 0; b < 6; ++b) settings.ifr_hwaddr.sa_data[b] = static_cast<char>(bytes[b]);
    TRY(interface_ioctl(SIOCSIFHWADDR, settings, "set the MAC of " + cards[i]));
    assigned.emplace_back(lower(text), cards[i]);
  }
  return assigned;
}

Result<void> configure_network(const channel::GuestNetwork& network, KnownCards& known) {
  TRY(set_up("lo"));
  for (const auto& interface : network.interfaces) TRY(configure_interface(interface, known));
  for (const auto& route : network.routes) TRY(add_route(route));
  return {};
}

}  // namespace vessel::agent

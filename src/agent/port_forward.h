// Port-forwarding into the guest (docs/kubernetes.md): the TCP ports the guest listens on for
// 127.0.0.1, reported to the shim whenever they change, and the connections the shim opens to
// them. The shim mirrors each port on the loopback of the pod's network namespace on the host,
// where containerd's PortForward dials it.
#pragma once

#include <poll.h>

#include <chrono>
#include <map>
#include <string_view>
#include <vector>

#include "common/channel/host_messages.h"
#include "common/channel/socket_stream.h"

namespace vessel::agent {

// The ports a connection to 127.0.0.1 reaches, from the text of /proc/net/tcp and
// /proc/net/tcp6: sockets listening on 0.0.0.0, 127.0.0.1, :: or ::ffff:127.0.0.1. Sorted,
// without repeats, the lowest channel::kMaxGuestPorts.
std::vector<uint16_t> loopback_listeners(std::string_view tcp, std::string_view tcp6);

class PortForwards {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kScanInterval = std::chrono::seconds(1);

  explicit PortForwards(channel::Channel& channel) : m_channel(channel) {}

  // From now on the guest's ports are looked at every kScanInterval, and sent when they change.
  void watch();
  // Milliseconds until the next look is due, or -1 when none is.
  int timeout_ms() const;
  void scan_if_due();
  // Answered ConnectFailed only on failure.
  void connect(const channel::from_host::Connect& message);
  static bool owns(uint32_t stream);
  void add_poll_fds(std::vector<pollfd>& fds) const;
  // False if `fd` is no connection's.
  Result<bool> on_ready(int fd);
  Result<void> on_frame(channel::Frame& frame);

 private:
  void forget_finished();

  channel::Channel& m_channel;
  std::map<uint32_t, channel::SocketStream> m_connections;
  bool m_watching = false;
  Clock::time_point m_next_scan;
  std::vector<uint16_t> m_reported;
};

}  // namespace vessel::agent

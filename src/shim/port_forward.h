// The pod's side of port-forwarding (docs/kubernetes.md). containerd's PortForward dials
// 127.0.0.1:PORT in the pod's network namespace on the host, where the pod sandbox's shim lives
// and the pod's processes do not: they are in the guest. So the shim listens there on each port
// the agent reports the guest listening on (agent/port_forward.h) and relays every connection
// to 127.0.0.1:PORT in the guest. Bounded: channel::kMaxGuestPorts listeners,
// channel::kMaxConnections connections; one past that is closed at once.
#pragma once

#include <poll.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/channel/messages.h"
#include "common/channel/socket_stream.h"

namespace vessel::shim {

// Whether `config` is the sandbox (pause) container of a pod that containerd's CRI made: the
// one whose shim holds the pod's network namespace.
bool is_cri_sandbox(const std::map<std::string, std::string>& annotations);

// Lets the shim, which keeps no capability, listen on the pod namespace's ports below 1024 (the
// namespace holds no other process that binds ports). Call before the capabilities go.
Result<void> allow_low_ports();

class PortForwards {
 public:
  explicit PortForwards(channel::Channel& channel) : m_channel(channel) {}

  // The guest's ports now: listens on the new ones and stops on those gone (connections to them
  // go on to their end).
  void on_ports(const std::vector<uint16_t>& ports);
  void on_connect_failed(uint32_t connection, const std::string& why);
  static bool owns(uint32_t stream);
  // With `read` false nothing is accepted or read (the channel is congested).
  void add_poll_fds(std::vector<pollfd>& fds, bool read) const;
  // False if `fd` is no listener's or connection's.
  Result<bool> on_ready(int fd);
  Result<void> on_frame(channel::Frame& frame);

 private:
  void accept(uint16_t port, int listener);
  void forget_finished();

  channel::Channel& m_channel;
  std::map<uint16_t, UniqueFd> m_listeners;
  std::map<uint32_t, channel::SocketStream> m_connections;
  uint32_t m_next = channel::kFirstConnection;
};

}  // namespace vessel::shim

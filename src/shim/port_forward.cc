#include "shim/port_forward.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <set>

#include "common/channel/host_messages.h"
#include "common/log.h"
#include "common/sys.h"

namespace vessel::shim {

namespace {

constexpr int kBacklog = 16;

Result<UniqueFd> listen_on_loopback(uint16_t port) {
  UniqueFd socket(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket) return fail_errno("socket");
  int on = 1;
  ::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
    return fail_errno("bind");
  if (::listen(socket.get(), kBacklog) < 0) return fail_errno("listen");
  return socket;
}

}  // namespace

bool is_cri_sandbox(const std::map<std::string, std::string>& annotations) {
  auto type = annotations.find("io.kubernetes.cri.container-type");
  return type != annotations.end() && type->second == "sandbox";
}

Result<void> allow_low_ports() {
  UniqueFd sysctl = TRY(sys::open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY));
  return sys::write_all(sysctl.get(), "0");
}

void PortForwards::on_ports(const std::vector<uint16_t>& ports) {
  std::set<uint16_t> wanted(ports.begin(), ports.end());
  std::erase_if(m_listeners, [&](const auto& entry) { return !wanted.count(entry.first); });
  for (uint16_t port : wanted) {
    if (m_listeners.count(port)) continue;
    auto listener = listen_on_loopback(port);
    if (!listener) {
      log::warning("port " + std::to_string(port) +
                   " of the guest cannot be forwarded: " + listener.error().message);
      continue;
    }
    m_listeners[port] = std::move(*listener);
  }
  log::debug("forwarding " + std::to_string(m_listeners.size()) + " ports of the guest");
}

void PortForwards::on_connect_failed(uint32_t connection, const std::string& why) {
  log::info("port-forward: " + why);
  m_connections.erase(connection);  // the client sees the connection end
}

bool PortForwards::owns(uint32_t stream) {
  return channel::process_of(stream) >= channel::kFirstConnection;
}

void PortForwards::add_poll_fds(std::vector<pollfd>& fds, bool read) const {
  if (read)
    for (const auto& [port, listener] : m_listeners) fds.push_back({listener.get(), POLLIN, 0});
  for (const auto& [id, connection] : m_connections) connection.add_poll_fds(fds, read);
}

Result<bool> PortForwards::on_ready(int fd) {
  for (const auto& [port, listener] : m_listeners)
    if (listener.get() == fd) {
      accept(port, fd);
      return true;
    }
  for (auto& [id, connection] : m_connections)
    if (TRY(connection.on_ready(fd, m_channel))) {
      forget_finished();
      return true;
    }
  return false;
}

void PortForwards::accept(uint16_t port, int listener) {
  UniqueFd client(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!client) return;
  if (m_connections.size() >= channel::kMaxConnections) {
    log::warning("port-forward: " + std::to_string(channel::kMaxConnections) +
                 " connections are open already: one to port " + std::to_string(port) +
                 " is closed");
    return;
  }
  while (m_connections.count(m_next))
    m_next = m_next == channel::kLastConnection ? channel::kFirstConnection : m_next + 1;
  uint32_t id = m_next;
  m_next = m_next == channel::kLastConnection ? channel::kFirstConnection : m_next + 1;
  // Sent before any of the connection's data: the agent has the connection when that arrives.
  channel::send(m_channel, channel::from_host::Connect{id, port});
  m_connections.emplace(
      std::piecewise_construct, std::forward_as_tuple(id),
      std::forward_as_tuple(std::move(client), channel::stream_of(id, channel::kStdin),
                            channel::stream_of(id, channel::kStdout)));
}

Result<void> PortForwards::on_frame(channel::Frame& frame) {
  auto it = m_connections.find(channel::process_of(frame.stream));
  if (it == m_connections.end()) return {};  // one that ended already
  TRY(it->second.on_frame(frame, m_channel));
  forget_finished();
  return {};
}

void PortForwards::forget_finished() {
  std::erase_if(m_connections, [](const auto& entry) { return entry.second.done(); });
}

}  // namespace vessel::shim

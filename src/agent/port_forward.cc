#include "agent/port_forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include "common/channel/agent_messages.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

constexpr const char* kListen = "0A";  // TCP_LISTEN in /proc/net/tcp's "st" column
constexpr size_t kMaxTableBytes = 4 << 20;

// The local address ("0100007F:1F90": the address's bytes as a native-endian hex word) of each
// listening socket in one table, added to `ports` when a connection to 127.0.0.1 reaches it.
void add_listeners(std::string_view table, const std::set<std::string>& reachable,
                   std::set<uint16_t>& ports) {
  std::istringstream lines{std::string(table)};
  std::string line;
  std::getline(lines, line);  // the column names
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    if (!(fields >> slot >> local >> remote >> state) || state != kListen) continue;
    size_t colon = local.find(':');
    if (colon == std::string::npos || !reachable.count(local.substr(0, colon))) continue;
    unsigned long port = std::strtoul(local.c_str() + colon + 1, nullptr, 16);
    if (port >= 1 && port <= 65535) ports.insert(static_cast<uint16_t>(port));
  }
}

}  // namespace

std::vector<uint16_t> loopback_listeners(std::string_view tcp, std::string_view tcp6) {
  std::set<uint16_t> ports;
  add_listeners(tcp, {"00000000", "0100007F"}, ports);
  add_listeners(tcp6, {std::string(32, '0'), "0000000000000000FFFF00000100007F"}, ports);
  std::vector<uint16_t> lowest(ports.begin(), ports.end());
  if (lowest.size() > channel::kMaxGuestPorts) lowest.resize(channel::kMaxGuestPorts);
  return lowest;
}

void PortForwards::watch() {
  m_watching = true;
  m_next_scan = Clock::now();
}

int PortForwards::timeout_ms() const {
  if (!m_watching) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(m_next_scan - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count() + 1));
}

void PortForwards::scan_if_due() {
  if (!m_watching || Clock::now() < m_next_scan) return;
  m_next_scan = Clock::now() + kScanInterval;
  auto tcp = sys::read_file("/proc/net/tcp", kMaxTableBytes);
  auto tcp6 = sys::read_file("/proc/net/tcp6", kMaxTableBytes);  // absent without IPv6
  if (!tcp) return;
  std::vector<uint16_t> ports = loopback_listeners(*tcp, tcp6 ? *tcp6 : "");
  if (ports == m_reported) return;
  m_reported = std::move(ports);
  channel::send(m_channel, channel::from_agent::Ports{m_reported});
}

void PortForwards::connect(const channel::from_host::Connect& message) {
  uint32_t id = message.connection;
  int port = message.port;
  auto refuse = [&](const std::string& why) {
    channel::send(m_channel, channel::from_agent::ConnectFailed{id, why});
  };
  if (id < channel::kFirstConnection || id > channel::kLastConnection || m_connections.count(id))
    return refuse("bad connection id");
  if (port < 1 || port > 65535) return refuse("bad port");
  if (m_connections.size() >= channel::kMaxConnections) return refuse("too many connections");
  UniqueFd socket(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!socket ||
      (::connect(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0 &&
       errno != EINPROGRESS))
    return refuse("127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  m_connections.emplace(
      std::piecewise_construct, std::forward_as_tuple(id),
      std::forward_as_tuple(std::move(socket), channel::stream_of(id, channel::kStdout),
                            channel::stream_of(id, channel::kStdin), channel::kPortWriteSize));
}

bool PortForwards::owns(uint32_t stream) {
  return channel::process_of(stream) >= channel::kFirstConnection;
}

void PortForwards::add_poll_fds(std::vector<pollfd>& fds) const {
  for (const auto& [id, connection] : m_connections) connection.add_poll_fds(fds, true);
}

Result<bool> PortForwards::on_ready(int fd) {
  for (auto& [id, connection] : m_connections)
    if (TRY(connection.on_ready(fd, m_channel))) {
      forget_finished();
      return true;
    }
  return false;
}

Result<void> PortForwards::on_frame(channel::Frame& frame) {
  auto it = m_connections.find(channel::process_of(frame.stream));
  if (it == m_connections.end()) return {};  // refused, or ended already
  TRY(it->second.on_frame(frame, m_channel));
  forget_finished();
  return {};
}

void PortForwards::forget_finished() {
  std::erase_if(m_connections, [](const auto& entry) { return entry.second.done(); });
}

}  // namespace vessel::agent

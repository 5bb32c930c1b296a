#include "shim/control.h"

#include <sys/socket.h>
#include <unistd.h>

#include "common/sys.h"

namespace vessel::shim {

namespace {
constexpr size_t kMaxRequest = 65536;
}

Result<ControlSocket> ControlSocket::listen(const std::string& path) {
  ControlSocket control;
  control.m_socket = TRY(sys::unix_listen(path));
  TRY(sys::set_nonblocking(control.m_socket.get()));
  return control;
}

void ControlSocket::add_poll_fds(std::vector<pollfd>& fds, bool clients) const {
  fds.push_back({m_socket.get(), POLLIN, 0});
  if (clients)
    for (const auto& client : m_clients) fds.push_back({client.fd.get(), POLLIN, 0});
}

std::optional<ControlRequest> ControlSocket::on_readable(int fd, bool& handled) {
  handled = true;
  if (fd == m_socket.get()) {
    for (;;) {
      int accepted = ::accept4(m_socket.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (accepted < 0) return std::nullopt;
      if (m_clients.size() >= kMaxClients)
        ::close(accepted);
      else
        m_clients.push_back(Client{UniqueFd(accepted), "", {}});
    }
  }
  auto it = std::find_if(m_clients.begin(), m_clients.end(),
                         [fd](const Client& client) { return client.fd.get() == fd; });
  if (it == m_clients.end()) {
    handled = false;
    return std::nullopt;
  }
  char buffer[4096];
  std::vector<UniqueFd> fds;
  ssize_t n = sys::receive_with_fds(fd, buffer, sizeof buffer, fds, 3);
  if (n <= 0 || it->line.size() + n > kMaxRequest) {
    m_clients.erase(it);
    return std::nullopt;
  }
  it->line.append(buffer, n);
  for (auto& passed : fds) it->fds.push_back(std::move(passed));
  if (it->line.find('\n') == std::string::npos) return std::nullopt;

  ControlRequest request{
      std::move(it->fd),
      control::parse_request(std::string_view(it->line).substr(0, it->line.find('\n'))),
      std::move(it->fds)};
  m_clients.erase(it);
  return request;
}

void respond(UniqueFd& client, const control::Reply& reply) {
  (void)sys::write_all(client.get(), control::encode(reply));
  client.reset();
}

}  // namespace vessel::shim

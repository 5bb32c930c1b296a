// The shim's control socket, STATE/ID/shim.sock: what the CLI (`start`, `kill`, `exec` relays,
// pod members' relays …) asks of a running sandbox (host/control_messages.h). Each client sends
// one request line, with up to three descriptors (an exec's or a member's stdio); this part
// accepts clients, reads their line within bounds (64 connections, 64 KiB a line) and parses it.
// Answering is the sandbox's: the request keeps the client's connection until then.
#pragma once

#include <poll.h>

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "host/control_messages.h"

namespace vessel::shim {

struct ControlRequest {
  UniqueFd client;                   // answered with one Reply (respond)
  Result<control::Request> request;  // or why the line is not one
  std::vector<UniqueFd> fds;         // passed with it
};

class ControlSocket {
 public:
  static constexpr size_t kMaxClients = 64;

  static Result<ControlSocket> listen(const std::string& path);

  void add_poll_fds(std::vector<pollfd>& fds, bool clients) const;
  // Accepts new clients when `fd` is the socket's; reads a client's when it is theirs. Returns a
  // request once its line is complete. `handled` tells whether `fd` was one of these.
  std::optional<ControlRequest> on_readable(int fd, bool& handled);

 private:
  struct Client {
    UniqueFd fd;
    std::string line;
    std::vector<UniqueFd> fds;
  };

  UniqueFd m_socket;
  std::vector<Client> m_clients;
};

// Writes the reply and closes the connection.
void respond(UniqueFd& client, const control::Reply& reply);

}  // namespace vessel::shim

// A client for QEMU's monitor protocol (QMP) on a connected stream socket: the greeting and
// capabilities handshake, then one command at a time. Events are skipped; every line QEMU sends
// is bounded (QEMU runs beside an untrusted guest) and every wait has a deadline.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::hypervisor {

class Qmp {
 public:
  // Reads QEMU's greeting and enters command mode.
  static Result<Qmp> connect(UniqueFd socket, std::chrono::milliseconds timeout);

  // Runs one command; its "return" value, or its "error" as a failure. `fd`, when given, travels
  // with the command (SCM_RIGHTS), as `getfd` wants.
  Result<nlohmann::json> execute(const std::string& command,
                                 const nlohmann::json& arguments = nlohmann::json::object(),
                                 int fd = -1);

 private:
  explicit Qmp(UniqueFd socket, std::chrono::milliseconds timeout)
      : m_socket(std::move(socket)), m_timeout(timeout) {}
  Result<nlohmann::json> read_reply();

  UniqueFd m_socket;
  std::chrono::milliseconds m_timeout;
  std::string m_buffer;
};

}  // namespace vessel::hypervisor

#include "hypervisor/qemu/qmp.h"

#include <unistd.h>

#include "common/sys.h"

namespace vessel::hypervisor {

using nlohmann::json;

namespace {
constexpr size_t kMaxLine = 64 << 10;
}

Result<Qmp> Qmp::connect(UniqueFd socket, std::chrono::milliseconds timeout) {
  Qmp qmp(std::move(socket), timeout);
  json greeting = TRY(qmp.read_reply());
  if (!greeting.contains("QMP")) return fail(EPROTO, "QEMU's monitor did not greet");
  TRY(qmp.execute("qmp_capabilities"));
  return qmp;
}

Result<json> Qmp::execute(const std::string& command, const json& arguments, int fd) {
  json request = {{"execute", command}};
  if (!arguments.empty()) request["arguments"] = arguments;
  std::string line = request.dump() + "\n";
  if (fd >= 0)
    TRY(sys::send_with_fds(m_socket.get(), line, {fd}));
  else
    TRY(sys::write_all(m_socket.get(), line));
  for (;;) {
    json reply = TRY(read_reply());
    if (reply.contains("event")) continue;
    if (reply.contains("error")) {
      const json& error = reply["error"];
      std::string text = error.is_object() && error.contains("desc") && error["desc"].is_string()
                             ? error["desc"].get<std::string>()
                             : "failed";
      return fail(EIO, "QEMU's " + command + ": " + text);
    }
    if (reply.contains("return")) return reply["return"];
  }
}

Result<json> Qmp::read_reply() {
  auto deadline = std::chrono::steady_clock::now() + m_timeout;
  for (;;) {
    if (size_t end = m_buffer.find('\n'); end != std::string::npos) {
      std::string line = m_buffer.substr(0, end);
      m_buffer.erase(0, end + 1);
      json message = json::parse(line, nullptr, false);
      if (!message.is_object()) return fail(EPROTO, "QEMU's monitor sent something not JSON");
      return message;
    }
    if (m_buffer.size() > kMaxLine) return fail(EPROTO, "QEMU's monitor sent an overlong line");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !TRY(sys::wait_readable(m_socket.get(), left)))
      return fail(ETIMEDOUT, "QEMU's monitor did not answer");
    char chunk[4096];
    ssize_t got = ::read(m_socket.get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail_errno("reading QEMU's monitor");
    if (got == 0) return fail(EPIPE, "QEMU closed its monitor");
    m_buffer.append(chunk, static_cast<size_t>(got));
  }
}

}  // namespace vessel::hypervisor

#include "runtime/shim_client.h"

#include <unistd.h>

#include "common/sys.h"

namespace vessel::runtime {

Result<nlohmann::json> shim_request(const std::string& socket_path, const nlohmann::json& request,
                                    std::chrono::seconds timeout) {
  UniqueFd socket = TRY(sys::unix_connect(socket_path));
  TRY(sys::write_all(socket.get(), request.dump() + "\n"));
  std::string reply;
  char buffer[4096];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (reply.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !TRY(sys::wait_readable(socket.get(), left)))
      return fail(ETIMEDOUT,
                  "the shim did not answer within " + std::to_string(timeout.count()) + " s");
    ssize_t n = ::read(socket.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(EIO, "the shim closed the connection without answering");
    reply.append(buffer, n);
    if (reply.size() > 65536) return fail(EPROTO, "the shim's answer is too long");
  }
  auto parsed = nlohmann::json::parse(reply, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object())
    return fail(EPROTO, "the shim's answer is not JSON");
  if (!parsed.value("ok", false))
    return fail(parsed.value("error", "the shim refused the request"));
  return parsed;
}

}  // namespace vessel::runtime

#include "runtime/shim_client.h"

#include <unistd.h>

#include "common/sys.h"

namespace vessel::runtime {

Result<std::string> read_line(int socket, std::string& buffer,
                              std::optional<std::chrono::milliseconds> timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout.value_or(std::chrono::milliseconds(0));
  size_t newline;
  while ((newline = buffer.find('\n')) == std::string::npos) {
    if (timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !TRY(sys::wait_readable(socket, left)))
        return fail(ETIMEDOUT, "the shim did not answer within " +
                                   std::to_string(timeout->count() / 1000) + " s");
    }
    char chunk[4096];
    ssize_t n = ::read(socket, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(EIO, "the shim closed the connection without answering");
    buffer.append(chunk, n);
    if (buffer.size() > 65536) return fail(EPROTO, "the shim's answer is too long");
  }
  std::string line = buffer.substr(0, newline);
  buffer.erase(0, newline + 1);
  return line;
}

Result<control::Reply> shim_request(const StateStore& store, const ContainerState& state,
                                    control::RequestOp op, std::chrono::seconds timeout) {
  return shim_request(state.shim_socket(store.root()),
                      control::Request{std::move(op), state.member}, timeout);
}

Result<control::Reply> shim_request(const std::string& socket_path, const control::Request& request,
                                    std::chrono::seconds timeout) {
  UniqueFd socket = TRY(sys::unix_connect(socket_path));
  TRY(sys::write_all(socket.get(), control::encode(request)));
  std::string buffer;
  control::Reply reply = TRY(control::parse_reply(TRY(read_line(socket.get(), buffer, timeout))));
  if (reply.error) return fail(*reply.error);
  return reply;
}

}  // namespace vessel::runtime

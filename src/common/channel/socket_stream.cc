#include "common/channel/socket_stream.h"

#include <fcntl.h>
#include <sys/socket.h>

namespace vessel::channel {

namespace {

UniqueFd duplicate(const UniqueFd& fd) {
  return UniqueFd(fd ? ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0) : -1);
}

}  // namespace

SocketStream::SocketStream(UniqueFd socket, uint32_t outgoing, uint32_t incoming, size_t frame_size)
    : m_socket(std::move(socket)),
      m_out(outgoing, duplicate(m_socket), frame_size),
      m_in(incoming, duplicate(m_socket)) {}

void SocketStream::add_poll_fds(std::vector<pollfd>& fds, bool read) const {
  if (read && m_out.wants_read()) fds.push_back({m_out.fd(), POLLIN, 0});
  if (m_in.wants_write()) fds.push_back({m_in.fd(), POLLOUT, 0});
}

Result<bool> SocketStream::on_ready(int fd, Channel& channel) {
  if (fd >= 0 && fd == m_out.fd()) {
    TRY(m_out.on_readable(channel));
    return true;
  }
  if (fd >= 0 && fd == m_in.fd()) {
    TRY(m_in.on_writable(channel));
    shut_down_written();
    return true;
  }
  return false;
}

Result<void> SocketStream::on_frame(Frame& frame, Channel& channel) {
  if (frame.stream == m_out.stream()) {
    if (frame.type == FrameType::Credit) return m_out.on_credit(frame.payload);
    if (frame.type == FrameType::Data)
      return fail(EPROTO,
                  "agent channel: data on the sending stream " + std::to_string(frame.stream));
    return {};
  }
  if (frame.type == FrameType::Data) TRY(m_in.on_data(channel, std::move(frame.payload)));
  if (frame.type == FrameType::Close) m_in.on_close();
  shut_down_written();
  return {};
}

void SocketStream::shut_down_written() {
  if (m_shut || !m_in.finished() || !m_socket) return;
  ::shutdown(m_socket.get(), SHUT_WR);
  m_shut = true;
}

}  // namespace vessel::channel

// One TCP connection relayed over the channel, for port-forwarding into a pod: what the socket
// reads goes out on one stream, what arrives on the other is written to the socket, each with
// the streams' flow control. Each direction ends on its own, as TCP's do: the peer's Close
// becomes a shutdown(SHUT_WR) once its data is written, this socket's end of file a Close.
#pragma once

#include <poll.h>

#include <vector>

#include "common/channel/stream.h"

namespace vessel::channel {

class SocketStream {
 public:
  // `frame_size` as for StreamSender.
  SocketStream(UniqueFd socket, uint32_t outgoing, uint32_t incoming,
               size_t frame_size = kMaxDataPayload);
  uint32_t incoming() const { return m_in.stream(); }
  // With `read` false only the socket's writes are polled (the channel is congested).
  void add_poll_fds(std::vector<pollfd>& fds, bool read) const;
  // Reads or writes the socket if `fd` is one of its descriptors; false if it is not.
  Result<bool> on_ready(int fd, Channel& channel);
  // Data and Close of the incoming stream, Credit of the outgoing one.
  Result<void> on_frame(Frame& frame, Channel& channel);
  // Both directions have ended: nothing more will cross.
  bool done() const { return !m_out.open() && m_in.finished(); }

 private:
  void shut_down_written();

  UniqueFd m_socket;
  StreamSender m_out;
  StreamReceiver m_in;
  bool m_shut = false;
};

}  // namespace vessel::channel

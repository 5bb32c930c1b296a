// Relays one stdio stream over a Channel with credit-based flow control.
// StreamSender reads a local descriptor and sends Data frames while the peer has granted credit;
// StreamReceiver writes Data frames to a local descriptor and grants credit back as bytes leave.
// Both sides start with kStreamWindow of credit, so neither buffers more than that per stream.
#pragma once

#include <string>

#include "common/channel/frame.h"

namespace vessel::channel {

class StreamSender {
 public:
  // Frames of at most `frame_size` bytes, header included (the agent's port takes
  // kPortWriteSize a write: a larger frame would cost it two).
  StreamSender(uint32_t stream, UniqueFd source, size_t frame_size = kMaxDataPayload);
  uint32_t stream() const { return m_stream; }
  int fd() const { return m_source.get(); }
  bool wants_read() const { return m_source.valid() && m_credit > 0; }
  bool open() const { return m_source.valid(); }
  // Reads what the credit allows and sends it; sends Close and drops the source at end of file.
  Result<void> on_readable(Channel& channel);
  Result<void> on_credit(std::string_view payload);
  // Stops reading and tells the peer the stream has ended.
  void close(Channel& channel);

 private:
  uint32_t m_stream;
  UniqueFd m_source;
  size_t m_frame_size;
  size_t m_credit = kStreamWindow;
};

class StreamReceiver {
 public:
  StreamReceiver(uint32_t stream, UniqueFd sink);
  uint32_t stream() const { return m_stream; }
  int fd() const { return m_sink.get(); }
  bool wants_write() const { return m_sink.valid() && !m_pending.empty(); }
  // True once the peer closed the stream and everything received has been written.
  bool finished() const { return m_peer_closed && m_pending.empty(); }
  Result<void> on_data(Channel& channel, std::string payload);
  void on_close();
  Result<void> on_writable(Channel& channel);

 private:
  uint32_t m_stream;
  UniqueFd m_sink;
  std::string m_pending;
  size_t m_pending_offset = 0;
  size_t m_outstanding = 0;  // bytes the peer sent that we have not yet credited back
  bool m_peer_closed = false;
};

}  // namespace vessel::channel

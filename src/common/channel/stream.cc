#include "common/channel/stream.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "common/sys.h"

namespace vessel::channel {

StreamSender::StreamSender(uint32_t stream, UniqueFd source, size_t frame_size)
    : m_stream(stream),
      m_source(std::move(source)),
      m_frame_size(std::clamp(frame_size, kHeaderSize + 1, kMaxDataPayload)) {
  if (m_source) (void)sys::set_nonblocking(m_source.get());
}

Result<void> StreamSender::on_readable(Channel& channel) {
  // Frames read in place behind their headers, several with one readv: under emulation every
  // copy and system call of the guest is dear.
  constexpr int kFrames = 16;
  static char frames[kFrames][kMaxDataPayload];
  const size_t chunk = m_frame_size - kHeaderSize;
  iovec parts[kFrames];
  int count = 0;
  for (size_t left = m_credit; left > 0 && count < kFrames; ++count) {
    size_t length = std::min(left, chunk);
    parts[count] = {frames[count] + kHeaderSize, length};
    left -= length;
  }
  ssize_t n = ::readv(m_source.get(), parts, count);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return {};
  if (n <= 0) {  // end of file, or an error that ends the stream all the same (EIO from a pty)
    close(channel);
    return {};
  }
  m_credit -= n;
  for (int i = 0; n > 0; ++i) {
    size_t length = std::min(static_cast<size_t>(n), chunk);
    put_header(frames[i], FrameType::Data, m_stream, length);
    TRY(channel.send_encoded(std::string_view(frames[i], kHeaderSize + length)));
    n -= static_cast<ssize_t>(length);
  }
  return {};
}

Result<void> StreamSender::on_credit(std::string_view payload) {
  if (payload.size() != 4) return fail(EPROTO, "agent channel: a credit frame is 4 bytes");
  uint32_t bytes = 0;
  for (int i = 0; i < 4; ++i)
    bytes |= static_cast<uint32_t>(static_cast<uint8_t>(payload[i])) << (8 * i);
  if (bytes > kStreamWindow || m_credit + bytes > kStreamWindow)
    return fail(EPROTO, "agent channel: credit beyond the stream window");
  m_credit += bytes;
  return {};
}

void StreamSender::close(Channel& channel) {
  if (!m_source) return;
  m_source.reset();
  channel.send(FrameType::Close, m_stream, {});
}

StreamReceiver::StreamReceiver(uint32_t stream, UniqueFd sink)
    : m_stream(stream), m_sink(std::move(sink)) {
  if (m_sink) (void)sys::set_nonblocking(m_sink.get());
}

Result<void> StreamReceiver::on_data(Channel& channel, std::string payload) {
  if (m_peer_closed)
    return fail(EPROTO, "agent channel: data after close on stream " + std::to_string(m_stream));
  if (m_outstanding + payload.size() > kStreamWindow)
    return fail(EPROTO, "agent channel: peer exceeded the flow-control window");
  if (!m_sink) {  // nobody reads this stream any more: discard, but keep the sender moving
    channel.add_credit(m_stream, static_cast<uint32_t>(payload.size()));
    return {};
  }
  m_outstanding += payload.size();
  if (m_pending.empty()) {  // the usual case: written at once, as it is, without a copy
    m_pending = std::move(payload);
    return on_writable(channel);
  }
  m_pending.append(payload);
  return {};
}

void StreamReceiver::on_close() {
  m_peer_closed = true;
  if (m_pending.empty()) m_sink.reset();
}

Result<void> StreamReceiver::on_writable(Channel& channel) {
  size_t written = 0;
  while (m_pending_offset < m_pending.size()) {
    ssize_t n = ::write(m_sink.get(), m_pending.data() + m_pending_offset,
                        m_pending.size() - m_pending_offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {  // the reader went away (EPIPE): drop what is left, as a closed pipe would
      written += m_pending.size() - m_pending_offset;
      m_pending_offset = m_pending.size();
      m_sink.reset();
      break;
    }
    m_pending_offset += n;
    written += n;
  }
  if (m_pending_offset == m_pending.size()) {
    m_pending.clear();
    m_pending_offset = 0;
    if (m_peer_closed) m_sink.reset();
  }
  if (written > 0 && !m_peer_closed) {
    m_outstanding -= written;
    channel.add_credit(m_stream, static_cast<uint32_t>(written));
  }
  return {};
}

}  // namespace vessel::channel

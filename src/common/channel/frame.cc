#include "common/channel/frame.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/sys.h"

namespace vessel::channel {

static void put_u32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

static uint32_t get_u32(const char* p) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return value;
}

std::string encode_frame(FrameType type, uint32_t stream, std::string_view payload) {
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  put_u32(out, static_cast<uint32_t>(payload.size()));
  out.push_back(static_cast<char>(type));
  out.append(3, '\0');
  put_u32(out, stream);
  out.append(payload);
  return out;
}

Result<void> FrameDecoder::feed(std::string_view bytes, std::vector<Frame>& frames) {
  m_buffer.append(bytes);
  size_t offset = 0;
  while (m_buffer.size() - offset >= kHeaderSize) {
    const char* header = m_buffer.data() + offset;
    uint32_t length = get_u32(header);
    uint8_t type = static_cast<uint8_t>(header[4]);
    if (type < static_cast<uint8_t>(FrameType::Control) ||
        type > static_cast<uint8_t>(FrameType::Close))
      return fail(EPROTO, "agent channel: unknown frame type " + std::to_string(type));
    if (header[5] || header[6] || header[7])
      return fail(EPROTO, "agent channel: a frame header's padding is not zero");
    auto frame_type = static_cast<FrameType>(type);
    if (length > max_payload(frame_type) ||
        (frame_type == FrameType::Credit && length != max_payload(frame_type)))
      return fail(EPROTO, "agent channel: a frame of type " + std::to_string(type) + " cannot be " +
                              std::to_string(length) + " bytes long");
    if (m_buffer.size() - offset - kHeaderSize < length) break;
    frames.push_back(
        Frame{frame_type, get_u32(header + 8), m_buffer.substr(offset + kHeaderSize, length)});
    offset += kHeaderSize + length;
  }
  m_buffer.erase(0, offset);
  return {};
}

Channel::Channel(UniqueFd fd) : m_fd(std::move(fd)) { (void)sys::set_nonblocking(m_fd.get()); }

void Channel::send(FrameType type, uint32_t stream, std::string_view payload) {
  m_out.push_back(encode_frame(type, stream, payload));
  m_out_bytes += m_out.back().size();
}

void Channel::add_credit(uint32_t stream, uint32_t bytes) {
  if (bytes > 0) m_credit[stream] += bytes;
}

Result<void> Channel::flush() {
  // Credit goes out only once the peer has taken what was queued before it.
  if (m_out.empty()) {
    for (auto& [stream, bytes] : m_credit) {
      for (uint64_t left = bytes; left > 0;) {
        auto part = static_cast<uint32_t>(std::min<uint64_t>(left, UINT32_MAX));
        std::string payload(4, '\0');
        for (int i = 0; i < 4; ++i) payload[i] = static_cast<char>((part >> (8 * i)) & 0xff);
        send(FrameType::Credit, stream, payload);
        left -= part;
      }
    }
    m_credit.clear();
  }
  while (!m_out.empty()) {
    const std::string& front = m_out.front();
    ssize_t n = ::write(m_fd.get(), front.data() + m_out_offset, front.size() - m_out_offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return {};
    if (n < 0) return fail_errno("agent channel: write");
    m_out_offset += n;
    m_out_bytes -= n;
    if (m_out_offset == front.size()) {
      m_out.pop_front();
      m_out_offset = 0;
    }
  }
  return {};
}

Result<bool> Channel::receive(std::vector<Frame>& frames) {
  char buffer[kMaxDataPayload + kHeaderSize];
  for (;;) {
    ssize_t n = ::read(m_fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n < 0) return fail_errno("agent channel: read");
    if (n == 0) return false;
    TRY(m_decoder.feed(std::string_view(buffer, n), frames));
    if (frames.size() >= 64) return true;  // let the caller act before reading more
  }
}

}  // namespace vessel::channel

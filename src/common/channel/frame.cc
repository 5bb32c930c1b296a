#include "common/channel/frame.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/sys.h"

namespace vessel::channel {

static uint32_t get_u32(const char* p) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return value;
}

void put_header(char* out, FrameType type, uint32_t stream, size_t length) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
    out[8 + i] = static_cast<char>((stream >> (8 * i)) & 0xff);
  }
  out[4] = static_cast<char>(type);
  out[5] = out[6] = out[7] = 0;
}

std::string encode_frame(FrameType type, uint32_t stream, std::string_view payload) {
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  out.resize(kHeaderSize);
  put_header(out.data(), type, stream, payload.size());
  out.append(payload);
  return out;
}

Result<void> FrameDecoder::start_frame() {
  const char* header = m_header.data();
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
  m_frame = Frame{frame_type, get_u32(header + 8), {}};
  m_frame.payload.reserve(length);
  m_length = length;
  m_in_payload = true;
  m_header.clear();
  return {};
}

Result<void> FrameDecoder::feed(std::string_view bytes, std::vector<Frame>& frames) {
  for (;;) {
    if (!m_in_payload) {
      size_t take = std::min(kHeaderSize - m_header.size(), bytes.size());
      m_header.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (m_header.size() < kHeaderSize) return {};
      TRY(start_frame());
    }
    size_t take = std::min(m_length - m_frame.payload.size(), bytes.size());
    m_frame.payload.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    if (m_frame.payload.size() < m_length) return {};
    frames.push_back(std::move(m_frame));
    m_in_payload = false;
    if (bytes.empty()) return {};
  }
}

constexpr size_t kMaxCreditStreams = 64;

Channel::Channel(UniqueFd fd) : m_fd(std::move(fd)) { (void)sys::set_nonblocking(m_fd.get()); }

void Channel::send(FrameType type, uint32_t stream, std::string_view payload) {
  m_out.push_back(encode_frame(type, stream, payload));
  m_out_bytes += m_out.back().size();
}

Result<void> Channel::send_encoded(std::string_view frame) {
  if (m_out.empty()) {
    ssize_t n;
    do n = ::write(m_fd.get(), frame.data(), frame.size());
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) return fail_errno("agent channel: write");
    if (n > 0) frame.remove_prefix(n);
  }
  if (!frame.empty()) {
    m_out.emplace_back(frame);
    m_out_bytes += frame.size();
  }
  return {};
}

void Channel::add_credit(uint32_t stream, uint32_t bytes) {
  if (bytes == 0) return;
  if ((m_credit[stream] += bytes) >= kCreditBatch || m_credit.size() > kMaxCreditStreams)
    m_credit_due = true;
}

Result<void> Channel::flush() {
  // Credit goes out only once the peer has taken what was queued before it.
  if (m_out.empty() && m_credit_due) {
    // Every stream's, when so many hold some (ended streams' remainders must not pile up).
    bool all = m_credit.size() > kMaxCreditStreams;
    for (auto it = m_credit.begin(); it != m_credit.end();) {
      if (!all && it->second < kCreditBatch) {
        ++it;
        continue;
      }
      for (uint64_t left = it->second; left > 0;) {
        auto part = static_cast<uint32_t>(std::min<uint64_t>(left, UINT32_MAX));
        std::string payload(4, '\0');
        for (int i = 0; i < 4; ++i) payload[i] = static_cast<char>((part >> (8 * i)) & 0xff);
        send(FrameType::Credit, it->first, payload);
        left -= part;
      }
      it = m_credit.erase(it);
    }
    m_credit_due = false;
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

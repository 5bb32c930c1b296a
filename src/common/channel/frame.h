// The agent channel's framing: one byte stream (a virtio-serial port) carrying frames of
//   u32 payload length | u8 type | 3 bytes zero | u32 stream id | payload   (little-endian)
// Control frames (stream 0) carry JSON messages; Data, Credit and Close frames carry the stdio
// streams with credit-based flow control: a sender may have at most kStreamWindow unacknowledged
// bytes in flight per stream, so neither side ever buffers without bound.
// Every length read from the peer is bounded: the guest is untrusted.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::channel {

enum class FrameType : uint8_t { Control = 1, Data = 2, Credit = 3, Close = 4 };

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxControlPayload = 1 << 20;  // a config.json fits many times over
constexpr size_t kMaxDataPayload = 64 << 10;
constexpr size_t kPortWriteSize = 32 << 10;  // the most a virtio-serial port takes a write
// Per stream: enough that the credit's round trip through a VM under emulation does not stall
// the stream (a 256 KiB window halved the rate of 1 GiB through stdout).
constexpr size_t kStreamWindow = 1 << 20;
// Credit is returned in batches of this much: each credit frame wakes the other side's QEMU
// and its guest, and a sender only waits once it has a whole window in flight, of which the
// receiver always has a batch to return. Deadlock-free while kCreditBatch <= kStreamWindow.
constexpr size_t kCreditBatch = kStreamWindow / 4;
// Past this many queued outgoing bytes a Channel is congested: its owner stops reading whatever
// makes more to send (the peer, stdin, clients) until the peer has taken some.
constexpr size_t kMaxQueuedBytes = 2 << 20;
constexpr uint32_t kControlStream = 0;

// The most a frame of `type` may carry; a Credit frame carries exactly this much.
constexpr size_t max_payload(FrameType type) {
  switch (type) {
    case FrameType::Control:
      return kMaxControlPayload;
    case FrameType::Data:
      return kMaxDataPayload;
    case FrameType::Credit:
      return 4;
    case FrameType::Close:
      return 0;
  }
  return 0;
}

struct Frame {
  FrameType type;
  uint32_t stream;
  std::string payload;
};

std::string encode_frame(FrameType type, uint32_t stream, std::string_view payload);
// Writes the kHeaderSize bytes of a header for a payload of `length` bytes to `out`.
void put_header(char* out, FrameType type, uint32_t stream, size_t length);

// Splits received bytes into frames. Fails on an unknown type or a length that type cannot have
// (Credit is exactly 4 bytes, Close is empty). A payload is copied once, into its frame.
class FrameDecoder {
 public:
  Result<void> feed(std::string_view bytes, std::vector<Frame>& frames);

 private:
  Result<void> start_frame();

  std::string m_header;  // the next header, while it is incomplete
  Frame m_frame{};       // the frame whose payload is arriving
  size_t m_length = 0;
  bool m_in_payload = false;
};

// A non-blocking connection that queues outgoing frames and decodes incoming ones.
class Channel {
 public:
  explicit Channel(UniqueFd fd);
  int fd() const { return m_fd.get(); }

  void send(FrameType type, uint32_t stream, std::string_view payload);
  // Sends a whole encoded frame: written at once when nothing is queued before it (no copy),
  // queued otherwise.
  Result<void> send_encoded(std::string_view frame);
  // Returns `bytes` of credit on `stream`. Credit is a counter per stream, sent as one frame once
  // it reaches kCreditBatch and the peer has taken what was queued before it, so a peer that
  // stops reading costs nothing per byte it sent.
  void add_credit(uint32_t stream, uint32_t bytes);
  // Writes as much of the queue as the descriptor takes now.
  Result<void> flush();
  bool wants_write() const { return !m_out.empty() || m_credit_due; }
  bool congested() const { return m_out_bytes > kMaxQueuedBytes; }
  // Reads what is available now. Returns false once the peer has closed the connection.
  Result<bool> receive(std::vector<Frame>& frames);

 private:
  UniqueFd m_fd;
  FrameDecoder m_decoder;
  std::deque<std::string> m_out;
  size_t m_out_offset = 0;
  size_t m_out_bytes = 0;
  std::map<uint32_t, uint64_t> m_credit;  // not yet sent, per stream
  bool m_credit_due = false;              // some stream's credit has reached kCreditBatch
};

}  // namespace vessel::channel

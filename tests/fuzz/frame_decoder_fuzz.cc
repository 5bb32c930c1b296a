// Fuzzes FrameDecoder, the first code that reads the untrusted guest's bytes.
// Input: one byte that chooses how the rest is cut into reads, then the bytes of the channel.
// Checks: every frame is within its type's limit; how the bytes are cut changes neither the frames
// nor the verdict; the frames encoded again give the bytes they came from (but for the header's
// three padding bytes) and decode to the same frames.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/channel/frame.h"
#include "fuzz_check.h"

namespace vessel::channel {
namespace {

bool same_frames(const std::vector<Frame>& a, const std::vector<Frame>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Frame& x, const Frame& y) {
    return x.type == y.type && x.stream == y.stream && x.payload == y.payload;
  });
}

struct Decoded {
  std::vector<Frame> frames;
  bool ok = true;
};

// Feeds `bytes` in reads of 1 to 4*shape bytes drawn from a small generator seeded with `shape`,
// or all at once when shape is 0. Stops at the first error, as a reader of the channel must.
Decoded decode(std::string_view bytes, uint8_t shape) {
  FrameDecoder decoder;
  Decoded out;
  uint32_t state = shape;
  for (size_t offset = 0; offset < bytes.size();) {
    size_t length = bytes.size() - offset;
    if (shape != 0) {
      state = state * 1103515245u + 12345u;
      length = std::min<size_t>(length, 1 + (state >> 16) % (4u * shape));
    }
    if (!decoder.feed(bytes.substr(offset, length), out.frames)) {
      out.ok = false;
      break;
    }
    offset += length;
  }
  return out;
}

}  // namespace
}  // namespace vessel::channel

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::channel;
  if (size == 0) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  Decoded whole = decode(bytes, 0);
  Decoded in_reads = decode(bytes, data[0]);
  FUZZ_CHECK(in_reads.ok == whole.ok, "how the bytes were cut changed the verdict");
  FUZZ_CHECK(same_frames(in_reads.frames, whole.frames), "how the bytes were cut changed frames");

  std::string wire;
  std::string fed;  // the bytes the frames came from (their padding is zero, or they were refused)
  for (const Frame& frame : whole.frames) {
    FUZZ_CHECK(frame.payload.size() <= max_payload(frame.type), "a frame exceeds its limit");
    wire += encode_frame(frame.type, frame.stream, frame.payload);
    FUZZ_CHECK(wire.size() <= bytes.size(), "the frames hold more bytes than were fed");
    fed.append(bytes.substr(fed.size(), wire.size() - fed.size()));
    fed.replace(wire.size() - frame.payload.size() - kHeaderSize + 5, 3, 3, '\0');
  }
  FUZZ_CHECK(wire == fed, "the frames do not encode to the bytes they came from");

  Decoded again = decode(wire, 0);
  FUZZ_CHECK(again.ok, "encoded frames did not decode");
  FUZZ_CHECK(same_frames(again.frames, whole.frames), "encoded frames decoded differently");
  return 0;
}

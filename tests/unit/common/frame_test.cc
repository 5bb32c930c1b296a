#include "common/channel/frame.h"

#include <gtest/gtest.h>

#include "common/sys.h"

namespace vessel::channel {

TEST(FrameTest, RoundTripsFramesSplitAtEveryByte) {
  std::string wire = encode_frame(FrameType::Control, 0, R"({"type":"hello"})") +
                     encode_frame(FrameType::Data, 2, std::string(1000, 'x')) +
                     encode_frame(FrameType::Close, 2, "");
  FrameDecoder decoder;
  std::vector<Frame> frames;
  for (char byte : wire) ASSERT_TRUE(decoder.feed(std::string_view(&byte, 1), frames));
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].type, FrameType::Control);
  EXPECT_EQ(frames[0].payload, R"({"type":"hello"})");
  EXPECT_EQ(frames[1].stream, 2u);
  EXPECT_EQ(frames[1].payload, std::string(1000, 'x'));
  EXPECT_EQ(frames[2].type, FrameType::Close);
}

TEST(FrameTest, RejectsOversizedLengthsBeforeBufferingThem) {
  // A hostile guest announcing a 4 GiB data frame must fail at the header, not after buffering.
  std::string header = encode_frame(FrameType::Data, 2, "");
  header[0] = header[1] = header[2] = header[3] = '\xff';
  FrameDecoder decoder;
  std::vector<Frame> frames;
  auto result = decoder.feed(header, frames);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("exceeds the limit"), std::string::npos);
}

TEST(FrameTest, RejectsUnknownTypes) {
  std::string frame = encode_frame(FrameType::Data, 2, "x");
  frame[4] = 99;
  FrameDecoder decoder;
  std::vector<Frame> frames;
  EXPECT_FALSE(decoder.feed(frame, frames));
}

TEST(FrameTest, ControlFramesAreBoundedToo) {
  FrameDecoder decoder;
  std::vector<Frame> frames;
  std::string header = encode_frame(FrameType::Control, 0, "");
  uint32_t too_long = kMaxControlPayload + 1;
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((too_long >> (8 * i)) & 0xff);
  EXPECT_FALSE(decoder.feed(header, frames));
}

TEST(ChannelTest, QueuesWhenThePeerDoesNotReadAndDeliversEverythingLater) {
  auto [a, b] = sys::socketpair().value();
  Channel sender(std::move(a));
  Channel receiver(std::move(b));
  const std::string chunk(kMaxDataPayload, 'z');
  for (int i = 0; i < 64; ++i)
    sender.send(FrameType::Data, 2, chunk);  // 4 MiB: more than a socket buffer
  ASSERT_TRUE(sender.flush());
  EXPECT_TRUE(sender.wants_write());
  size_t received = 0;
  std::vector<Frame> frames;
  while (received < 64 * chunk.size()) {
    ASSERT_TRUE(sender.flush());
    frames.clear();
    ASSERT_TRUE(receiver.receive(frames).value());
    for (const auto& frame : frames) {
      EXPECT_EQ(frame.payload, chunk);
      received += frame.payload.size();
    }
  }
  EXPECT_FALSE(sender.wants_write());
}

}  // namespace vessel::channel

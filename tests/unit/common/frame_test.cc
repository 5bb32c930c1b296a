#include "common/channel/frame.h"

#include <gtest/gtest.h>

#include "common/channel/messages.h"
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
  EXPECT_EQ(result.error().message,
            "agent channel: a frame of type 2 cannot be 4294967295 bytes long");
}

TEST(FrameTest, CreditIsExactlyFourBytesAndCloseIsEmpty) {
  for (auto [type, payload] : {std::pair{FrameType::Credit, std::string("\x01\x00")},
                               std::pair{FrameType::Credit, std::string("\x01\x00\x00\x00\x00")},
                               std::pair{FrameType::Close, std::string("x")}}) {
    FrameDecoder decoder;
    std::vector<Frame> frames;
    EXPECT_FALSE(decoder.feed(encode_frame(type, 1, payload), frames));
    EXPECT_TRUE(frames.empty());
  }
}

TEST(FrameTest, HeaderPaddingMustBeZero) {
  std::string frame = encode_frame(FrameType::Data, 2, "x");
  frame[6] = 1;
  FrameDecoder decoder;
  std::vector<Frame> frames;
  EXPECT_FALSE(decoder.feed(frame, frames));
}

TEST(ChannelTest, CreditIsOneCounterPerStreamSentInBatches) {
  auto [a, b] = sys::socketpair().value();
  Channel guest(std::move(a)), host(std::move(b));
  for (uint32_t i = 0; i < kCreditBatch - 1; ++i) host.add_credit(kStdout, 1);
  host.add_credit(kStderr, 7);
  EXPECT_FALSE(host.wants_write());  // below a batch: nothing to send yet
  host.add_credit(kStdout, 1);
  EXPECT_TRUE(host.wants_write());
  ASSERT_TRUE(host.flush());
  std::vector<Frame> frames;
  ASSERT_TRUE(guest.receive(frames));
  ASSERT_EQ(frames.size(), 1u);  // stdout's batch; stderr's 7 bytes wait for theirs
  EXPECT_EQ(frames[0].stream, kStdout);
  EXPECT_EQ(frames[0].payload, std::string("\x00\x00\x04\x00", 4));  // 256 KiB
}

TEST(ChannelTest, CreditOfManyStreamsIsSentWholeSoEndedStreamsLeaveNothingBehind) {
  auto [a, b] = sys::socketpair().value();
  Channel guest(std::move(a)), host(std::move(b));
  for (uint32_t stream = 1; stream <= 65; ++stream) host.add_credit(stream, 1);
  EXPECT_TRUE(host.wants_write());
  ASSERT_TRUE(host.flush());
  EXPECT_FALSE(host.wants_write());
  std::vector<Frame> frames;
  ASSERT_TRUE(guest.receive(frames));
  EXPECT_EQ(frames.size(), 65u);
}

TEST(ChannelTest, APeerThatStopsReadingMakesTheChannelCongested) {
  auto [a, b] = sys::socketpair().value();
  Channel guest(std::move(a)), host(std::move(b));
  std::string chunk(kMaxDataPayload, 'x');
  for (int i = 0; i < 64 && !host.congested(); ++i) {
    host.send(FrameType::Data, kStdin, chunk);
    ASSERT_TRUE(host.flush());
  }
  EXPECT_TRUE(host.congested());
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

#include "common/channel/stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/channel/messages.h"
#include "common/sys.h"

namespace vessel::channel {

namespace {

// Moves every queued frame from one channel to the other end and decodes it there.
std::vector<Frame> pump(Channel& from, Channel& to) {
  std::vector<Frame> frames;
  for (int i = 0; i < 1000 && from.wants_write(); ++i) {
    EXPECT_TRUE(from.flush());
    EXPECT_TRUE(to.receive(frames));
  }
  EXPECT_TRUE(to.receive(frames));
  return frames;
}

}  // namespace

TEST(StreamTest, SenderStopsAtTheWindowUntilCreditReturns) {
  auto [a, b] = sys::socketpair().value();
  Channel guest(std::move(a)), host(std::move(b));
  auto source = sys::pipe().value();
  auto sink = sys::pipe().value();
  StreamSender sender(kStdout, std::move(source.read));
  StreamReceiver receiver(kStdout, std::move(sink.write));
  ASSERT_TRUE(sys::set_nonblocking(source.write.get()));

  // Fill more than a window into the source and let the sender read all it may.
  std::string data;
  for (size_t i = 0; i < kStreamWindow * 2; ++i) data.push_back(static_cast<char>(i * 7));
  size_t fed = 0;
  size_t sent = 0;
  for (int round = 0; round < 100 && sender.wants_read(); ++round) {
    ssize_t n = ::write(source.write.get(), data.data() + fed, data.size() - fed);
    if (n > 0) fed += n;
    ASSERT_TRUE(sender.on_readable(guest));
    for (auto& frame : pump(guest, host)) {
      sent += frame.payload.size();
      ASSERT_TRUE(receiver.on_data(host, std::move(frame.payload)));
    }
  }
  EXPECT_EQ(sent, kStreamWindow);  // the window, not a byte more
  EXPECT_FALSE(sender.wants_read());

  // The receiver writes to its sink and grants the credit back.
  ASSERT_TRUE(sys::set_nonblocking(sink.read.get()));
  ASSERT_TRUE(receiver.on_writable(host));
  std::string out(kStreamWindow, '\0');
  size_t got = 0;
  while (got < kStreamWindow) {
    ssize_t n = ::read(sink.read.get(), out.data() + got, out.size() - got);
    if (n <= 0) {
      ASSERT_TRUE(receiver.on_writable(host));
      continue;
    }
    got += n;
  }
  EXPECT_EQ(out, data.substr(0, kStreamWindow));
  for (auto& frame : pump(host, guest)) {
    ASSERT_EQ(frame.type, FrameType::Credit);
    ASSERT_TRUE(sender.on_credit(frame.payload));
  }
  EXPECT_TRUE(sender.wants_read());
}

TEST(StreamTest, ReceiverRejectsAPeerThatIgnoresTheWindow) {
  auto [a, b] = sys::socketpair().value();
  Channel host(std::move(a));
  auto sink = sys::pipe().value();
  ASSERT_TRUE(sys::set_nonblocking(sink.write.get()));
  while (::write(sink.write.get(), "x", 1) == 1) {
  }  // a reader that takes nothing: the window is all the peer may send
  StreamReceiver receiver(kStdout, std::move(sink.write));
  ASSERT_TRUE(receiver.on_data(host, std::string(kStreamWindow, 'a')));
  auto overflow = receiver.on_data(host, "b");
  ASSERT_FALSE(overflow);
  EXPECT_NE(overflow.error().message.find("flow-control window"), std::string::npos);
}

TEST(StreamTest, EndOfFileSendsCloseAndTheReceiverFinishesAfterDraining) {
  auto [a, b] = sys::socketpair().value();
  Channel guest(std::move(a)), host(std::move(b));
  auto source = sys::pipe().value();
  auto sink = sys::pipe().value();
  StreamSender sender(kStderr, std::move(source.read));
  StreamReceiver receiver(kStderr, std::move(sink.write));
  ASSERT_TRUE(sys::write_all(source.write.get(), "last words"));
  source.write.reset();
  ASSERT_TRUE(sender.on_readable(guest));
  ASSERT_TRUE(sender.on_readable(guest));
  EXPECT_FALSE(sender.open());
  auto frames = pump(guest, host);
  ASSERT_EQ(frames.size(), 2u);
  ASSERT_TRUE(receiver.on_data(host, frames[0].payload));  // written at once: the pipe has room
  EXPECT_FALSE(receiver.wants_write());
  EXPECT_EQ(frames[1].type, FrameType::Close);
  EXPECT_FALSE(receiver.finished());
  receiver.on_close();
  EXPECT_TRUE(receiver.finished());
  char buffer[32] = {};
  EXPECT_EQ(::read(sink.read.get(), buffer, sizeof buffer), 10);
  EXPECT_STREQ(buffer, "last words");
}

// The agent's frames fit one port write each, read in place behind their headers: the stream
// stays whole, in order, and each frame with its header is at most the size asked for.
TEST(StreamTest, FramesOfAGivenSizeCarryTheStreamWholeAndInOrder) {
  auto [a, b] = sys::socketpair().value();
  Channel guest(std::move(a)), host(std::move(b));
  auto source = sys::pipe().value();
  ASSERT_TRUE(sys::set_nonblocking(source.write.get()));
  StreamSender sender(kStdout, std::move(source.read), kPortWriteSize);
  std::string data;
  for (size_t i = 0; i < 3 * kPortWriteSize + 123; ++i) data.push_back(static_cast<char>(i * 13));
  std::string received;
  size_t fed = 0;
  for (int round = 0; round < 1000 && received.size() < data.size(); ++round) {
    ssize_t n = ::write(source.write.get(), data.data() + fed, data.size() - fed);
    if (n > 0) fed += n;
    ASSERT_TRUE(sender.on_readable(guest));
    for (auto& frame : pump(guest, host)) {
      ASSERT_EQ(frame.type, FrameType::Data);
      ASSERT_LE(frame.payload.size() + kHeaderSize, kPortWriteSize);
      received += frame.payload;
    }
  }
  EXPECT_EQ(received, data);
}

}  // namespace vessel::channel

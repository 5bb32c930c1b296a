#include "common/channel/stream.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/channel/messages.h"
#include "common/channel/socket_stream.h"
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

namespace {

// Lets `stream` read and write what it can, and hands the frames it sent to `peer`.
void step(SocketStream& stream, Channel& from, Channel& to, SocketStream& peer) {
  std::vector<pollfd> fds;
  stream.add_poll_fds(fds, true);
  for (const auto& entry : fds) ASSERT_TRUE(stream.on_ready(entry.fd, from));
  for (auto& frame : pump(from, to)) ASSERT_TRUE(peer.on_frame(frame, to));
}

// What `fd` has now; `ended` once it read end of file.
std::string take(int fd, bool& ended) {
  std::string got;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0) got.append(buffer, n);
  ended = n == 0;
  return got;
}

}  // namespace

TEST(SocketStreamTest, EachDirectionEndsOnItsOwnAsTcpDoes) {
  auto [a, b] = sys::socketpair().value();
  Channel host_channel(std::move(a)), guest_channel(std::move(b));
  auto [client, host_end] = sys::socketpair().value();   // containerd's connection, the shim's
  auto [guest_end, server] = sys::socketpair().value();  // the agent's, the pod's server
  const uint32_t id = kFirstConnection + 3;
  SocketStream host(std::move(host_end), stream_of(id, kStdin), stream_of(id, kStdout));
  SocketStream guest(std::move(guest_end), stream_of(id, kStdout), stream_of(id, kStdin));
  auto steps = [&] {
    for (int i = 0; i < 4; ++i) {
      step(host, host_channel, guest_channel, guest);
      step(guest, guest_channel, host_channel, host);
    }
  };

  // The client sends its request and half-closes: the server reads it, then end of file.
  ASSERT_TRUE(sys::write_all(client.get(), "GET /"));
  ::shutdown(client.get(), SHUT_WR);
  steps();
  bool ended = false;
  EXPECT_EQ(take(server.get(), ended), "GET /");
  EXPECT_TRUE(ended);
  EXPECT_FALSE(host.done());
  // The reply still reaches the client, which reads end of file once the server closes.
  ASSERT_TRUE(sys::write_all(server.get(), "200 OK"));
  server.reset();
  steps();
  EXPECT_EQ(take(client.get(), ended), "200 OK");
  EXPECT_TRUE(ended);
  EXPECT_TRUE(host.done());
  EXPECT_TRUE(guest.done());
}

}  // namespace vessel::channel

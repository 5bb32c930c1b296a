// Fuzzes the stdio streams (StreamSender, StreamReceiver) as the shim drives them. The input is
// what the guest sends: it is written into one end of a socketpair, a Channel receives it at the
// other, and its frames go where StdioRelay::on_frame sends them: Credit to a sender for stdin
// (stream 1, read from a pipe), Data and Close to receivers for stdout (stream 2, written to a
// pipe) and stderr (stream 3, which nobody reads). After every frame the host runs one round of
// its poll loop.
// Control frames never reach the streams in the shim; here each byte of their payload acts for the
// host's side or sends a large Data frame: the low 3 bits pick an action (see Session::act), the
// high 5 bits an amount.
// Checks: the host's frames are well formed; it sends no more stdin than the guest's credit allows
// and credits no more than it received; stdin reaches the guest and stdout its pipe intact and in
// order. A Result failure ends the input, as it ends the shim's session.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/channel/messages.h"
#include "common/channel/stream.h"
#include "common/sys.h"
#include "fuzz_check.h"

namespace vessel::channel {
namespace {

constexpr int kMaxFrames = 256;
constexpr int kMaxActions = 256;
constexpr int kMaxRounds = 4096;

// Byte `offset` of what the user types into stdin, so the guest's copy can be checked.
char typed_byte(size_t offset) { return static_cast<char>(offset * 131 + offset / 251); }

uint32_t get_u32(std::string_view bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i)
    value |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return value;
}

template <typename T>
T must(Result<T> result, const char* what) {
  FUZZ_CHECK(result.has_value(), what);
  return std::move(*result);
}

class Session {
 public:
  Session(std::pair<UniqueFd, UniqueFd> channel, sys::Pipe input, sys::Pipe output)
      : m_guest(std::move(channel.first)),
        m_host(std::move(channel.second)),
        m_typing(std::move(input.write)),
        m_stdin(stream_of(0, kStdin), std::move(input.read)),
        m_stdout(stream_of(0, kStdout), std::move(output.write)),
        m_stderr(stream_of(0, kStderr), UniqueFd()),
        m_reader(std::move(output.read)) {
    FUZZ_CHECK(sys::set_nonblocking(m_guest.get()), "set_nonblocking");
    FUZZ_CHECK(sys::set_nonblocking(m_typing.get()), "set_nonblocking");
    FUZZ_CHECK(sys::set_nonblocking(m_reader.get()), "set_nonblocking");
  }

  void run(std::string_view input) {
    size_t written = 0;
    int frames_left = kMaxFrames;
    for (int round = 0; round < kMaxRounds; ++round) {
      if (written < input.size()) {
        ssize_t n = ::write(m_guest.get(), input.data() + written, input.size() - written);
        if (n > 0) written += n;
      }
      if (written == input.size() && !m_input_ended) {
        ::shutdown(m_guest.get(), SHUT_WR);
        m_input_ended = true;
      }
      std::vector<Frame> frames;
      auto open = m_host.receive(frames);
      if (!open) return;
      bool done = !*open;
      for (Frame& frame : frames) {
        if (frames_left-- == 0) {
          done = true;
          break;
        }
        if (!on_frame(frame) || !poll_round()) return;
      }
      if (done) break;
      if (frames.empty() && !poll_round()) return;
    }
    settle();
  }

 private:
  // As StdioRelay::on_frame, but for Control frames, which script the host's side.
  bool on_frame(Frame& frame) {
    if (frame.type == FrameType::Control) {
      for (char op : frame.payload) {
        if (m_actions_left == 0) break;
        --m_actions_left;
        if (!act(static_cast<uint8_t>(op))) return false;
      }
      return true;
    }
    for (size_t i = 0; i < 2; ++i) {
      StreamReceiver& receiver = i == 0 ? m_stdout : m_stderr;
      if (receiver.stream() != frame.stream) continue;
      if (frame.type == FrameType::Data) {
        std::string payload = frame.payload;
        if (!receiver.on_data(m_host, std::move(frame.payload))) return false;
        m_received[i] += payload.size();
        if (i == 0) m_stdout_received += payload;
      }
      if (frame.type == FrameType::Close) {
        receiver.on_close();
        m_closed[i] = true;
      }
      return true;
    }
    if (frame.stream == m_stdin.stream() && frame.type == FrameType::Credit) {
      if (!m_stdin.on_credit(frame.payload)) return false;
      m_granted += get_u32(frame.payload);
    }
    return true;
  }

  bool act(uint8_t op) {
    size_t amount = (op >> 3) + 1;
    switch (op & 7) {
      case 0:  // the user types into stdin
        type(amount * 512);
        break;
      case 1:  // ... and ends it
        m_typing.reset();
        break;
      case 2:  // the reader of stdout reads
        read_output(amount * 1024);
        break;
      case 3:  // ... or goes away, so writes fail with EPIPE
        m_reader.reset();
        break;
      case 4:  // the process is gone: StdioRelay::close_input
        m_stdin.close(m_host);
        break;
      case 5:  // the guest sends more stdout or stderr than fits in an input, up to a full frame
      case 6: {
        std::string payload(amount * 2048, '\0');
        for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
        Frame frame{FrameType::Data, stream_of(0, (op & 7) == 5 ? kStdout : kStderr), payload};
        return on_frame(frame);
      }
      case 7:
        read_output(SIZE_MAX);
        break;
    }
    return true;
  }

  void type(size_t bytes) {
    if (!m_typing) return;
    std::string text;
    for (size_t i = 0; i < bytes; ++i) text.push_back(typed_byte(m_typed + i));
    ssize_t n = ::write(m_typing.get(), text.data(), text.size());
    if (n > 0) m_typed += n;
  }

  void read_output(size_t bytes) {
    char buffer[16 << 10];
    while (m_reader && bytes > 0) {
      ssize_t n = ::read(m_reader.get(), buffer, std::min(bytes, sizeof buffer));
      if (n <= 0) return;
      FUZZ_CHECK(m_read + n <= m_stdout_received.size(), "stdout wrote bytes it never received");
      FUZZ_CHECK(
          std::string_view(buffer, n) == std::string_view(m_stdout_received).substr(m_read, n),
          "stdout wrote other bytes than it received");
      m_read += n;
      bytes -= n;
    }
  }

  // One round of the shim's poll loop (StdioRelay::add_poll_fds and on_ready), without waiting.
  bool poll_round() {
    std::vector<pollfd> fds;
    if (m_stdin.wants_read()) fds.push_back({m_stdin.fd(), POLLIN, 0});
    if (m_stdout.wants_write()) fds.push_back({m_stdout.fd(), POLLOUT, 0});
    if (m_stderr.wants_write()) fds.push_back({m_stderr.fd(), POLLOUT, 0});
    if (!fds.empty()) FUZZ_CHECK(::poll(fds.data(), fds.size(), 0) >= 0, "poll");
    for (const pollfd& fd : fds) {
      if (fd.revents == 0) continue;
      if (fd.fd == m_stdin.fd() && !m_stdin.on_readable(m_host)) return false;
      if (fd.fd == m_stdout.fd() && !m_stdout.on_writable(m_host)) return false;
      if (fd.fd == m_stderr.fd() && !m_stderr.on_writable(m_host)) return false;
    }
    if (!m_host.flush()) return false;
    check_sent();
    return true;
  }

  // Reads what the host sent, as the guest would, and checks it.
  void check_sent() {
    char buffer[64 << 10];
    std::vector<Frame> frames;
    for (;;) {
      ssize_t n = ::read(m_guest.get(), buffer, sizeof buffer);
      if (n <= 0) break;
      FUZZ_CHECK(m_sent.feed(std::string_view(buffer, n), frames), "the host sent a bad frame");
    }
    for (const Frame& frame : frames) {
      switch (frame.type) {
        case FrameType::Data:
          FUZZ_CHECK(frame.stream == m_stdin.stream(), "data on a stream the host does not send");
          FUZZ_CHECK(!m_stdin_closed, "stdin data after its close");
          for (char byte : frame.payload) {
            FUZZ_CHECK(m_stdin_sent < m_typed && byte == typed_byte(m_stdin_sent),
                       "stdin sent other bytes than were typed");
            ++m_stdin_sent;
          }
          FUZZ_CHECK(m_stdin_sent <= m_granted + kStreamWindow, "stdin sent beyond its credit");
          break;
        case FrameType::Close:
          FUZZ_CHECK(frame.stream == m_stdin.stream(), "close of a stream the host does not send");
          FUZZ_CHECK(!m_stdin_closed, "stdin closed twice");
          m_stdin_closed = true;
          break;
        case FrameType::Credit: {
          FUZZ_CHECK(frame.payload.size() == 4, "a credit that is not 4 bytes");
          size_t i = frame.stream == m_stdout.stream() ? 0 : 1;
          FUZZ_CHECK(i == 0 || frame.stream == m_stderr.stream(), "credit for an unknown stream");
          m_credited[i] += get_u32(frame.payload);
          FUZZ_CHECK(m_credited[i] <= m_received[i], "credit for bytes never received");
          break;
        }
        case FrameType::Control:
          FUZZ_CHECK(false, "the streams sent a control frame");
      }
    }
  }

  // The guest has sent everything: the host writes out what it holds, and the reader reads it.
  void settle() {
    for (int round = 0; round < kMaxRounds && (m_stdout.wants_write() || m_host.wants_write());
         ++round) {
      read_output(SIZE_MAX);
      if (!poll_round()) return;
    }
    if (!m_reader) return;  // the reader went away: the rest was dropped
    read_output(SIZE_MAX);
    FUZZ_CHECK(m_read == m_stdout_received.size(), "stdout lost bytes");
    if (m_closed[0]) FUZZ_CHECK(m_stdout.finished(), "stdout not finished after close");
    // Credit goes back in batches: what is held back is less than one.
    if (!m_closed[0])
      FUZZ_CHECK(m_received[0] - m_credited[0] < kCreditBatch, "stdout not credited back");
  }

  UniqueFd m_guest;
  Channel m_host;
  UniqueFd m_typing;  // the user's end of stdin
  StreamSender m_stdin;
  StreamReceiver m_stdout;
  StreamReceiver m_stderr;
  UniqueFd m_reader;  // the reader's end of stdout
  bool m_input_ended = false;
  int m_actions_left = kMaxActions;

  size_t m_typed = 0;       // bytes typed into stdin
  size_t m_granted = 0;     // stdin credit the guest granted
  size_t m_stdin_sent = 0;  // stdin bytes the guest received
  bool m_stdin_closed = false;
  FrameDecoder m_sent;  // the guest's decoder of what the host sent

  size_t m_received[2] = {};  // stdout and stderr bytes the host accepted
  size_t m_credited[2] = {};  // ... and credited back
  bool m_closed[2] = {};
  std::string m_stdout_received;
  size_t m_read = 0;  // stdout bytes the reader read
};

}  // namespace
}  // namespace vessel::channel

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::signal(SIGPIPE, SIG_IGN);  // as the shim does: a reader that goes away is EPIPE
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel;
  channel::Session session(channel::must(sys::socketpair(), "socketpair"),
                           channel::must(sys::pipe(), "pipe"), channel::must(sys::pipe(), "pipe"));
  session.run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

// hostile-qemu: stands in for qemu-system-x86_64 and plays a malicious guest on the agent
// channel, so tests can drive the real shim against it. vessel starts it exactly as it starts
// QEMU (in QEMU's jail, with QEMU's argv); the kernel command line ([hypervisor.qemu]
// kernel_params) picks the behaviour with vessel.hostile=MODE:
//   data-flood     after start, never reads the channel again and sends 1-byte stdout frames
//   credit-flood   after start, sends 4-byte credit frames for stdin without end
//   console-flood  after start, writes to the serial console without end
//   big-control    after start, sends 1 MiB control messages without end
//   wrong-types    after start, reports exit with "exit_code":"seven"
//   short-credit   after start, sends a 2-byte credit frame
//   ports          after start, reports the guest listening on port 47999 and sends frames and
//                  a connect_failed for connections the shim never opened
//   bad-hello      says hello with "version": 5
//   silent-start   never answers start
//   ignore-signals after start, reads and ignores everything (SIGTERM included), never exits
//   agent-exits    the guest's init exits before hello: the console shows the kernel's panic
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/channel/frame.h"
#include "common/channel/messages.h"
#include "common/sys.h"

using namespace vessel;
using namespace vessel::channel;

namespace {

constexpr uint16_t kHostilePort = 47999;  // hostile_agent_test.cc looks for it

int fd_after(const std::vector<std::string>& args, const std::string& prefix) {
  for (const auto& arg : args)
    if (arg.starts_with(prefix)) return std::stoi(arg.substr(arg.rfind('=') + 1));
  return -1;
}

void send_raw(int fd, FrameType type, uint32_t stream, std::string_view payload) {
  (void)sys::write_all(fd, encode_frame(type, stream, payload));
}

void send_json(int fd, const nlohmann::json& message) {
  send_raw(fd, FrameType::Control, kControlStream, message.dump());
}

// Reads frames until a control message of `type` arrives.
bool wait_for(int fd, FrameDecoder& decoder, const std::string& type) {
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return false;
    std::vector<Frame> frames;
    if (!decoder.feed(std::string_view(buffer, n), frames)) return false;
    for (const auto& frame : frames) {
      if (frame.type != FrameType::Control) continue;
      auto message = parse_message(frame);
      if (message && (*message)["type"] == type) return true;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int agent = fd_after(args, "socket,id=agent,");
  int console = fd_after(args, "socket,id=console,");
  std::string mode;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "-append") {
      size_t at = args[i + 1].find("vessel.hostile=");
      if (at != std::string::npos) {
        mode = args[i + 1].substr(at + 15);
        mode = mode.substr(0, mode.find(' '));
      }
    }
  if (agent < 0) return 2;
  ::signal(SIGPIPE, SIG_IGN);
  if (mode == "ignore-signals") ::signal(SIGTERM, SIG_IGN);

  if (mode == "agent-exits") {
    (void)sys::write_all(console,
                         "[    0.301000] Run /init as init process\n"
                         "vessel-agent: error: no virtio port named vessel.0\n"
                         "[    0.352000] Kernel panic - not syncing: Attempted to kill init! "
                         "exitcode=0x00000100\n"
                         "[    0.352100] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-vessel #1\n"
                         "[    0.352200] Call Trace:\n");
    return 0;
  }
  if (mode == "bad-hello") {
    send_json(agent, {{"type", "hello"}, {"version", 5}});
    ::pause();
    return 0;
  }
  FrameDecoder decoder;
  send_json(agent, {{"type", "hello"}, {"version", std::string(build_version())}});
  if (!wait_for(agent, decoder, "create")) return 3;
  send_json(agent, {{"type", "created"}});
  if (!wait_for(agent, decoder, "start")) return 3;
  if (mode != "silent-start") send_json(agent, {{"type", "started"}});

  if (mode == "data-flood") {
    for (;;) send_raw(agent, FrameType::Data, stream_of(0, kStdout), "x");
  } else if (mode == "credit-flood") {
    for (;;) send_raw(agent, FrameType::Credit, stream_of(0, kStdin), std::string("\x01\0\0\0", 4));
  } else if (mode == "console-flood") {
    std::string line(4096, 'c');
    line.back() = '\n';
    for (;;) (void)sys::write_all(console, line);
  } else if (mode == "big-control") {
    std::string pad(kMaxControlPayload - 64, 'p');
    for (;;) send_json(agent, {{"type", "noise"}, {"pad", pad}});
  } else if (mode == "wrong-types") {
    send_json(agent, {{"type", "exit"}, {"exit_code", "seven"}});
    ::pause();
  } else if (mode == "ports") {
    // Ports to listen on (taken only from the guest of a pod's sandbox that asked), and frames
    // for connections the shim never opened.
    send_json(agent, {{"type", "ports"}, {"ports", {kHostilePort}}});
    send_raw(agent, FrameType::Data, stream_of(kFirstConnection, kStdout), "x");
    send_raw(agent, FrameType::Close, stream_of(kFirstConnection + 7, kStdout), "");
    send_json(agent, {{"type", "connect_failed"},
                      {"connection", kFirstConnection + 1},
                      {"message", "\x1b[2Jno"}});
  } else if (mode == "short-credit") {
    send_raw(agent, FrameType::Credit, stream_of(0, kStdin), std::string("\x01\0", 2));
    ::pause();
  }
  // ignore-signals and anything else: read and ignore everything, never exit.
  char buffer[65536];
  while (::read(agent, buffer, sizeof buffer) > 0) {
  }
  for (;;) ::pause();
}

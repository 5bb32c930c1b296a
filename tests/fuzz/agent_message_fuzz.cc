// Fuzzes the control messages of the agent channel, both directions: parse_agent_message (what
// the host accepts from the untrusted guest) and parse_host_message (what the agent accepts from
// the host) on a Control frame whose payload is the input, and printable() on the input as text.
// Checks: text that reaches the host is printable (no C0 or C1 control, no DEL), within its bound,
// and unchanged by a second printable(); printable ASCII passes as it is; numbers are in range;
// lists are bounded; whatever parses encodes to a message that parses back to the same type.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/channel/agent_messages.h"
#include "common/channel/host_messages.h"
#include "fuzz_check.h"

namespace vessel::channel {
namespace {

void check_safe(std::string_view text, size_t max) {
  FUZZ_CHECK(text.size() <= max, "text longer than its bound");
  for (size_t i = 0; i < text.size(); ++i) {
    auto byte = static_cast<unsigned char>(text[i]);
    FUZZ_CHECK(byte >= 0x20 && byte != 0x7f, "a control character in text from the guest");
    FUZZ_CHECK(
        byte != 0xc2 || i + 1 == text.size() || static_cast<unsigned char>(text[i + 1]) >= 0xa0,
        "a C1 control in text from the guest");
  }
}

void check_printable(std::string_view text, size_t max) {
  std::string out = printable(text, max);
  check_safe(out, max);
  FUZZ_CHECK(printable(out, max) == out, "printable() changed its own output");
  bool ascii = true;
  for (char c : text) ascii = ascii && c >= 0x20 && c < 0x7f;
  if (ascii) FUZZ_CHECK(out == text.substr(0, max), "printable() changed printable ASCII");
}

void check_id(uint32_t id) { FUZZ_CHECK(id <= kMaxProcessId, "a process id out of range"); }

void check(const from_agent::Hello& hello) { check_safe(hello.version, kMaxGuestText); }
void check(const from_agent::Created& created) { check_id(created.container); }
void check(const from_agent::Started& started) { check_id(started.container); }
void check(const from_agent::ExecStarted& started) { check_id(started.exec); }
void check(const from_agent::Failed& failed) {
  check_id(failed.process);
  check_safe(failed.message, kMaxGuestText);
}
void check(const from_agent::Exit& exit) {
  check_id(exit.process);
  FUZZ_CHECK(exit.exit_code || exit.signal, "an exit without exit_code or signal");
  if (exit.exit_code) FUZZ_CHECK(*exit.exit_code >= 0 && *exit.exit_code <= 255, "exit_code");
  if (exit.signal) FUZZ_CHECK(*exit.signal >= 1 && *exit.signal <= 64, "signal out of range");
}
void check(const from_agent::Answer& answer) {
  if (answer.error) check_safe(*answer.error, kMaxGuestText);
  FUZZ_CHECK(answer.processes.size() <= kMaxGuestProcesses, "too many processes");
  for (const auto& process : answer.processes) {
    FUZZ_CHECK(process.pid >= 1, "a process without a pid");
    check_safe(process.command, kMaxGuestCommand);
  }
}
void check(const from_agent::TemplateReady&) {}
void check(const from_agent::Ports& ports) {
  FUZZ_CHECK(ports.ports.size() <= kMaxGuestPorts, "too many ports");
  for (uint16_t port : ports.ports) FUZZ_CHECK(port >= 1, "port 0");
}
void check(const from_agent::ConnectFailed& failed) {
  FUZZ_CHECK(failed.connection >= kFirstConnection && failed.connection <= kLastConnection,
             "connection");
  check_safe(failed.message, kMaxGuestText);
}
void check(const Unknown& unknown) { check_safe(unknown.type, 64); }

template <typename Variant>
void check_round_trip(const Variant& message, Result<Variant> (*parse)(const Frame&)) {
  auto back = parse(Frame{FrameType::Control, kControlStream, encode(message)});
  FUZZ_CHECK(back.has_value(), "an encoded message does not parse");
  FUZZ_CHECK(back->index() == message.index(), "an encoded message parses as another type");
}

}  // namespace
}  // namespace vessel::channel

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::channel;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (size_t max : {size_t{0}, size_t{1}, size / 2, size_t{64}, kMaxGuestText})
    check_printable(text, max);

  Frame frame{FrameType::Control, kControlStream, std::string(text)};
  if (auto message = parse_agent_message(frame)) {
    std::visit([](const auto& one) { check(one); }, *message);
    check_round_trip(*message, parse_agent_message);
  }
  if (auto message = parse_host_message(frame)) check_round_trip(*message, parse_host_message);
  return 0;
}

// Fuzzes what the host accepts from the guest's agent: parse_agent_message on a Control frame
// whose payload is the input, and printable() on the input as text.
// Checks: text that reaches the host is printable (no C0 or C1 control, no DEL), within its bound,
// and unchanged by a second printable(); printable ASCII passes as it is; numbers are in range;
// process lists are bounded.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/channel/messages.h"
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

}  // namespace
}  // namespace vessel::channel

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::channel;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (size_t max : {size_t{0}, size_t{1}, size / 2, size_t{64}, kMaxGuestText})
    check_printable(text, max);

  auto message = parse_agent_message(Frame{FrameType::Control, kControlStream, std::string(text)});
  if (!message) return 0;
  check_safe(message->type, 64);
  check_safe(message->version, kMaxGuestText);
  check_safe(message->text, kMaxGuestText);
  if (message->exec) FUZZ_CHECK(*message->exec >= 1 && *message->exec <= kMaxProcessId, "exec");
  if (message->exit_code)
    FUZZ_CHECK(*message->exit_code >= 0 && *message->exit_code <= 255, "exit_code out of range");
  if (message->signal)
    FUZZ_CHECK(*message->signal >= 1 && *message->signal <= 64, "signal out of range");
  if (message->type == "exit")
    FUZZ_CHECK(message->exit_code || message->signal, "an exit without exit_code or signal");
  FUZZ_CHECK(message->processes.size() <= kMaxGuestProcesses, "too many processes");
  if (message->connection)
    FUZZ_CHECK(*message->connection >= kFirstConnection && *message->connection <= kLastConnection,
               "connection");
  if (message->ports) {
    FUZZ_CHECK(message->ports->size() <= kMaxGuestPorts, "too many ports");
    for (uint16_t port : *message->ports) FUZZ_CHECK(port >= 1, "port 0");
  }
  for (const auto& process : message->processes) {
    FUZZ_CHECK(process.pid >= 1, "a process without a pid");
    check_safe(process.command, kMaxGuestCommand);
  }
  return 0;
}

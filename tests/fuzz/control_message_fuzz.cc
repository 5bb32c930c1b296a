// Fuzzes the shim's control protocol (host/control_messages.h), whose socket anything the user
// runs can write to: parse_request and parse_relay_message (what the shim accepts), parse_reply
// and parse_exited (what the runtime accepts back), on the input as one line. Checks: numbers
// are in range, a member's root is one bounded name, lists are bounded, text in a reply is
// printable, and whatever parses encodes to a line that parses back to the same type.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "host/control_messages.h"

namespace vessel::control {
namespace {

void check_id(uint32_t id) { FUZZ_CHECK(id <= channel::kMaxProcessId, "a member id out of range"); }
void check_signal(int signal) { FUZZ_CHECK(signal >= 1 && signal <= 64, "signal out of range"); }

void check(const request::Start&) {}
void check(const request::Kill& kill) { check_signal(kill.signal); }
void check(const request::Pause&) {}
void check(const request::Resume&) {}
void check(const request::Update& update) {
  FUZZ_CHECK(update.resources.is_object(), "an update without resources");
}
void check(const request::ListProcesses&) {}
void check(const request::Exec& exec) {
  FUZZ_CHECK(exec.process.is_object(), "an exec without a process");
}
void check(const request::CreateMember& member) {
  FUZZ_CHECK(member.spec.is_object(), "a member without a spec");
  FUZZ_CHECK(!member.root.empty() && member.root.size() <= 255, "a member's root");
  for (const auto& bind : member.binds)
    FUZZ_CHECK(!bind.destination.empty() && bind.destination[0] == '/', "a relative bind");
}
void check(const relay::Signal& signal) { check_signal(signal.signal); }
void check(const relay::Resize&) {}
void check(const channel::Unknown& unknown) { FUZZ_CHECK(unknown.type.size() <= 64, "op"); }

std::string_view without_newline(const std::string& line) {
  FUZZ_CHECK(!line.empty() && line.back() == '\n', "an encoded line without its newline");
  return std::string_view(line).substr(0, line.size() - 1);
}

}  // namespace
}  // namespace vessel::control

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::control;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  if (auto request = parse_request(line)) {
    check_id(request->member);
    std::visit([](const auto& op) { check(op); }, request->op);
    auto back = parse_request(without_newline(encode(*request)));
    FUZZ_CHECK(back.has_value(), "an encoded request does not parse");
    FUZZ_CHECK(back->op.index() == request->op.index() && back->member == request->member,
               "an encoded request parses as another");
  }
  if (auto message = parse_relay_message(line)) {
    std::visit([](const auto& one) { check(one); }, *message);
    auto back = parse_relay_message(without_newline(encode(*message)));
    FUZZ_CHECK(back.has_value() && back->index() == message->index(),
               "an encoded relay line parses as another");
  }
  if (auto reply = parse_reply(line)) {
    check_id(reply->member);
    FUZZ_CHECK(reply->processes.size() <= vessel::channel::kMaxGuestProcesses, "processes");
    if (reply->error)
      for (unsigned char byte : *reply->error) FUZZ_CHECK(byte >= 0x20 && byte != 0x7f, "error");
    auto back = parse_reply(without_newline(encode(*reply)));
    FUZZ_CHECK(back.has_value() && back->error == reply->error && back->member == reply->member &&
                   back->processes.size() == reply->processes.size(),
               "an encoded reply parses as another");
  }
  if (auto exited = parse_exited(line)) {
    FUZZ_CHECK(exited->exit_code >= 0 && exited->exit_code <= 255, "exit_code out of range");
    auto back = parse_exited(without_newline(encode(*exited)));
    FUZZ_CHECK(back.has_value() && back->exit_code == exited->exit_code &&
                   back->oom_killed == exited->oom_killed,
               "an encoded exit parses as another");
  }
  return 0;
}

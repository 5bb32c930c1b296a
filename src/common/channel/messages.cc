#include "common/channel/messages.h"

#ifndef VESSEL_VERSION
#error "VESSEL_VERSION must be defined by the build"
#endif

namespace vessel::channel {

std::string_view build_version() { return VESSEL_VERSION; }

void send_message(Channel& channel, const nlohmann::json& message) {
  channel.send(FrameType::Control, kControlStream, message.dump());
}

Result<nlohmann::json> parse_message(const Frame& frame) {
  auto message = nlohmann::json::parse(frame.payload, nullptr, false);
  if (message.is_discarded() || !message.is_object() || !message.contains("type") ||
      !message["type"].is_string())
    return fail(EPROTO, "agent channel: malformed control message");
  return message;
}

std::string version_mismatch_message(std::string_view runtime_version,
                                     std::string_view agent_version) {
  return "the guest image's agent is version " + std::string(agent_version) +
         " but this runtime is version " + std::string(runtime_version) +
         ": rebuild the guest image with the runtime (make guest, or make install)";
}

}  // namespace vessel::channel

namespace vessel::channel {

namespace {

// A number field within [min, max]; nothing if absent; an error if present but not such a number.
Result<std::optional<int64_t>> bounded_integer(const nlohmann::json& message, const char* key,
                                               int64_t min, int64_t max) {
  auto it = message.find(key);
  if (it == message.end()) return std::optional<int64_t>{};
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max ||
      (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)))
    return fail(EPROTO, std::string("agent channel: \"") + key + "\" is not a number in [" +
                            std::to_string(min) + ", " + std::to_string(max) + "]");
  return std::optional<int64_t>{it->get<int64_t>()};
}

Result<std::string> bounded_string(const nlohmann::json& message, const char* key) {
  auto it = message.find(key);
  if (it == message.end()) return std::string();
  if (!it->is_string())
    return fail(EPROTO, std::string("agent channel: \"") + key + "\" is not a string");
  return printable(it->get_ref<const std::string&>());
}

}  // namespace

std::string printable(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size() && out.size() < max;) {
    auto byte = static_cast<unsigned char>(text[i]);
    // The length of the UTF-8 sequence starting here, or 0 for a byte that cannot start one.
    size_t length = byte < 0x80             ? 1
                    : (byte & 0xe0) == 0xc0 ? 2
                    : (byte & 0xf0) == 0xe0 ? 3
                    : (byte & 0xf8) == 0xf0 ? 4
                                            : 0;
    bool formed = length > 0 && i + length <= text.size();
    uint32_t code = length == 1 ? byte : byte & (0x7f >> length);
    for (size_t k = 1; formed && k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      formed = (next & 0xc0) == 0x80;
      code = code << 6 | (next & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    static constexpr uint32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000};
    formed = formed && code >= kShortest[length] && !(code >= 0xd800 && code <= 0xdfff) &&
             code <= 0x10ffff;
    if (!formed) {
      out.push_back('?');
      ++i;
      continue;
    }
    // C0 controls, DEL and C1 controls (U+0080-U+009F) all steer terminals.
    bool control = code < 0x20 || (code >= 0x7f && code < 0xa0);
    if (control) {
      out.push_back('?');
    } else {
      if (out.size() + length > max) break;  // never cut inside a character
      out.append(text.substr(i, length));
    }
    i += length;
  }
  return out;
}

Result<AgentMessage> parse_agent_message(const Frame& frame) {
  nlohmann::json json = TRY(parse_message(frame));
  AgentMessage message;
  message.type = printable(json["type"].get_ref<const std::string&>(), 64);
  if (auto exec = TRY(bounded_integer(json, "exec", 1, kMaxProcessId)))
    message.exec = static_cast<uint32_t>(*exec);
  message.version = TRY(bounded_string(json, "version"));
  message.text = TRY(bounded_string(json, "message"));
  if (auto code = TRY(bounded_integer(json, "exit_code", 0, 255)))
    message.exit_code = static_cast<int>(*code);
  if (auto signal = TRY(bounded_integer(json, "signal", 1, 64)))
    message.signal = static_cast<int>(*signal);
  if (auto oom = json.find("oom_killed"); oom != json.end()) {
    if (!oom->is_boolean()) return fail(EPROTO, "agent channel: \"oom_killed\" is not a boolean");
    message.oom_killed = oom->get<bool>();
  }
  if (auto list = json.find("processes"); list != json.end()) {
    if (!list->is_array() || list->size() > kMaxGuestProcesses)
      return fail(EPROTO, "agent channel: \"processes\" is not a list of at most " +
                              std::to_string(kMaxGuestProcesses));
    for (const auto& entry : *list) {
      if (!entry.is_object()) return fail(EPROTO, "agent channel: a process is not an object");
      GuestProcess process;
      process.pid =
          static_cast<uint32_t>(TRY(bounded_integer(entry, "pid", 1, 1 << 22)).value_or(0));
      process.ppid =
          static_cast<uint32_t>(TRY(bounded_integer(entry, "ppid", 0, 1 << 22)).value_or(0));
      process.uid =
          static_cast<uint32_t>(TRY(bounded_integer(entry, "uid", 0, 0xffffffffLL)).value_or(0));
      if (process.pid == 0) return fail(EPROTO, "agent channel: a process without a pid");
      process.command = printable(TRY(bounded_string(entry, "cmd")), kMaxGuestCommand);
      message.processes.push_back(std::move(process));
    }
  }
  if (auto connection = TRY(bounded_integer(json, "connection", kFirstConnection, kLastConnection)))
    message.connection = static_cast<uint32_t>(*connection);
  if (auto list = json.find("ports"); list != json.end()) {
    if (!list->is_array() || list->size() > kMaxGuestPorts)
      return fail(EPROTO, "agent channel: \"ports\" is not a list of at most " +
                              std::to_string(kMaxGuestPorts));
    message.ports.emplace();
    for (const auto& entry : *list) {
      if (!entry.is_number_unsigned() || entry.get<uint64_t>() < 1 || entry.get<uint64_t>() > 65535)
        return fail(EPROTO, "agent channel: a port is not a number in [1, 65535]");
      message.ports->push_back(static_cast<uint16_t>(entry.get<uint64_t>()));
    }
  }
  if (message.type == "exit" && !message.exit_code && !message.signal)
    return fail(EPROTO, "agent channel: an exit message without exit_code or signal");
  return message;
}

}  // namespace vessel::channel

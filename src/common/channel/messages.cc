#include "common/channel/messages.h"

#ifndef VESSEL_VERSION
#error "VESSEL_VERSION must be defined by the build"
#endif

namespace vessel::channel {

std::string_view build_version() { return VESSEL_VERSION; }

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

}  // namespace vessel::channel

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

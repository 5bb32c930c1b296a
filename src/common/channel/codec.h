// How a message set becomes JSON and back, for both directions (host_messages.h,
// agent_messages.h): each message is a struct with its wire name in kType, a `write` that adds
// its fields to a JSON object and a `read` that takes them back, checked (fields.h). The last
// alternative of each set is Unknown: a type this build does not know, kept by name only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "common/channel/frame.h"
#include "common/channel/messages.h"

namespace vessel::channel {

// A message of a type this build does not know: its name, printable and cut.
struct Unknown {
  std::string type;
};
inline void write(const Unknown&, nlohmann::json&) {}

// The message as a JSON object, its wire name under `key` ("type" on the agent channel, "op" on
// the shim's control socket: host/control_messages.h).
template <typename Message>
nlohmann::json to_json(const Message& message, const char* key = "type") {
  nlohmann::json json = nlohmann::json::object();
  if constexpr (std::is_same_v<Message, Unknown>)
    json[key] = message.type;
  else
    json[key] = Message::kType;
  write(message, json);
  return json;
}

template <typename Variant>
nlohmann::json variant_to_json(const Variant& message, const char* key = "type") {
  return std::visit([key](const auto& one) { return to_json(one, key); }, message);
}

template <typename Variant>
std::string encode_variant(const Variant& message) {
  return variant_to_json(message).dump();
}

// The alternative of Variant whose kType is `type`, read from `json`; Unknown if none is.
template <typename Variant, size_t I = 0>
Result<Variant> decode_by_type(std::string_view type, const nlohmann::json& json) {
  using Message = std::variant_alternative_t<I, Variant>;
  if constexpr (std::is_same_v<Message, Unknown>) {
    return Variant(Unknown{printable(type, 64)});
  } else {
    if (type == Message::kType) return Variant(TRY(read(json, std::type_identity<Message>{})));
    return decode_by_type<Variant, I + 1>(type, json);
  }
}

// The field readers' errors name no channel (fields.h): this one is named here.
template <typename Variant>
Result<Variant> decode_variant(const Frame& frame) {
  nlohmann::json json = TRY(parse_message(frame));
  return decode_by_type<Variant>(json["type"].get_ref<const std::string&>(), json)
      .map_error(context("agent channel"));
}

// The name a message goes by on the wire, for logs.
template <typename Variant>
std::string type_of(const Variant& message) {
  return std::visit(
      [](const auto& one) -> std::string {
        if constexpr (std::is_same_v<std::decay_t<decltype(one)>, Unknown>)
          return one.type;
        else
          return std::string(std::decay_t<decltype(one)>::kType);
      },
      message);
}

}  // namespace vessel::channel

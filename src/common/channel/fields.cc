#include "common/channel/fields.h"

#include "common/channel/messages.h"

namespace vessel::channel::fields {

using nlohmann::json;

namespace {

tl::unexpected<Error> wrong(const char* key, const std::string& what) {
  return fail(EPROTO, std::string("\"") + key + "\" is not " + what);
}

}  // namespace

Result<std::optional<int64_t>> integer(const json& message, const char* key, int64_t min,
                                       int64_t max) {
  auto it = message.find(key);
  if (it == message.end()) return std::optional<int64_t>{};
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max ||
      (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)))
    return wrong(key, "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return std::optional<int64_t>{it->get<int64_t>()};
}

Result<int64_t> required_integer(const json& message, const char* key, int64_t min, int64_t max) {
  auto value = TRY(integer(message, key, min, max));
  if (!value) return fail(EPROTO, std::string("\"") + key + "\" is missing");
  return *value;
}

Result<std::string> string(const json& message, const char* key, size_t max) {
  auto it = message.find(key);
  if (it == message.end()) return std::string();
  if (!it->is_string()) return wrong(key, "a string");
  if (it->get_ref<const std::string&>().size() > max)
    return fail(EPROTO,
                std::string("\"") + key + "\" is longer than " + std::to_string(max) + " bytes");
  return it->get<std::string>();
}

Result<std::string> text(const json& message, const char* key, size_t max) {
  auto it = message.find(key);
  if (it == message.end()) return std::string();
  if (!it->is_string()) return wrong(key, "a string");
  return printable(it->get_ref<const std::string&>(), max);
}

Result<bool> boolean(const json& message, const char* key, bool fallback) {
  auto it = message.find(key);
  if (it == message.end()) return fallback;
  if (!it->is_boolean()) return wrong(key, "a boolean");
  return it->get<bool>();
}

Result<json> object(const json& message, const char* key) {
  auto it = message.find(key);
  if (it == message.end() || it->is_null()) return json();
  if (!it->is_object()) return wrong(key, "an object");
  return *it;
}

Result<json> array(const json& message, const char* key) {
  auto it = message.find(key);
  if (it == message.end() || it->is_null()) return json();
  if (!it->is_array()) return wrong(key, "a list");
  return *it;
}

}  // namespace vessel::channel::fields

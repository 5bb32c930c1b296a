// Checked reads of one control message's fields, shared by the two codecs (host_messages.h and
// agent_messages.h): a field that is absent gives nothing (or the fallback), one that is present
// with the wrong type or out of range gives an EPROTO error naming it (not the channel: the codec
// that reads the message adds that). Nothing here throws.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"

namespace vessel::channel::fields {

// An integer within [min, max].
Result<std::optional<int64_t>> integer(const nlohmann::json& message, const char* key, int64_t min,
                                       int64_t max);
// The same, required.
Result<int64_t> required_integer(const nlohmann::json& message, const char* key, int64_t min,
                                 int64_t max);
// A string of at most max bytes, as it came (from the host).
Result<std::string> string(const nlohmann::json& message, const char* key, size_t max);
// Text from the guest: made printable and cut at max bytes (channel::printable).
Result<std::string> text(const nlohmann::json& message, const char* key, size_t max);
Result<bool> boolean(const nlohmann::json& message, const char* key, bool fallback);
// A JSON object or array handed whole to the module that parses it (a spec, a network
// description); null when absent.
Result<nlohmann::json> object(const nlohmann::json& message, const char* key);
Result<nlohmann::json> array(const nlohmann::json& message, const char* key);

}  // namespace vessel::channel::fields

// Base64 for small binary payloads inside JSON control messages (files bound into the guest).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace vessel {

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace vessel

#include "common/base64.h"

namespace vessel {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(chunk >> 18) & 63]);
    out.push_back(kAlphabet[(chunk >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=');
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return fail("base64: length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  auto value = [](char c) -> int {
    const char* p = std::char_traits<char>::find(kAlphabet, 64, c);
    return p ? static_cast<int>(p - kAlphabet) : -1;
  };
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t chunk = 0;
    int padding = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      int v = 0;
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++padding;
      } else if ((v = value(c)) < 0 || padding) {
        return fail("base64: invalid character");
      }
      chunk = (chunk << 6) | static_cast<uint32_t>(v);
    }
    out.push_back(static_cast<char>(chunk >> 16));
    if (padding < 2) out.push_back(static_cast<char>((chunk >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(chunk & 0xff));
  }
  return out;
}

}  // namespace vessel

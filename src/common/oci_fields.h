// Checked reads of config.json's fields, shared by the spec model's parsers (oci_spec.cc,
// oci_process.cc); errors name the field as the spec spells it.
#pragma once

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::oci {

// A list of strings; absent or null: empty.
inline Result<std::vector<std::string>> string_list(const nlohmann::json& parent, const char* key,
                                                    const std::string& where) {
  std::vector<std::string> out;
  if (!parent.contains(key) || parent[key].is_null()) return out;
  const nlohmann::json& list = parent[key];
  if (!list.is_array()) return fail(where + "." + key + " must be an array of strings");
  for (const auto& item : list) {
    if (!item.is_string()) return fail(where + "." + key + " must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

// An id or mode that fits T: 4294967296 must not become uid 0.
template <typename T>
inline Result<T> unsigned_value(const nlohmann::json& value, const std::string& what) {
  if (!value.is_number_unsigned() || value.get<uint64_t>() > std::numeric_limits<T>::max())
    return fail(what + " must be an integer from 0 to " +
                std::to_string(std::numeric_limits<T>::max()));
  return static_cast<T>(value.get<uint64_t>());
}

template <typename T>
inline Result<T> unsigned_field(const nlohmann::json& parent, const char* key,
                                const std::string& where) {
  return unsigned_value<T>(parent[key], where + "." + key);
}

}  // namespace vessel::oci

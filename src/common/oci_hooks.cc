// config.json's hooks, part of the spec model (common/oci_spec.h).
#include "common/oci_spec.h"

namespace vessel::oci {

using nlohmann::json;

namespace {

constexpr const char* kPhases[] = {"prestart",       "createRuntime", "createContainer",
                                   "startContainer", "poststart",     "poststop"};

Result<std::vector<std::string>> strings(const json& hook, const char* key,
                                         const std::string& where) {
  std::vector<std::string> out;
  if (!hook.contains(key) || hook[key].is_null()) return out;
  if (!hook[key].is_array()) return fail(where + "." + key + " must be an array of strings");
  for (const auto& item : hook[key]) {
    if (!item.is_string()) return fail(where + "." + key + " must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<Hook> parse_hook(const json& entry, const std::string& where) {
  if (!entry.is_object() || !entry.contains("path") || !entry["path"].is_string() ||
      entry["path"].get<std::string>().empty() || entry["path"].get<std::string>()[0] != '/')
    return fail(where + ".path must be an absolute path");
  Hook hook;
  hook.path = entry["path"];
  hook.args = TRY(strings(entry, "args", where));
  if (entry.contains("env")) hook.env = TRY(strings(entry, "env", where));
  if (entry.contains("timeout")) {
    if (!entry["timeout"].is_number_integer() || entry["timeout"].get<int64_t>() <= 0)
      return fail(where + ".timeout must be a positive number of seconds");
    hook.timeout_seconds =
        static_cast<int>(std::min<int64_t>(entry["timeout"].get<int64_t>(), 86400));
  }
  return hook;
}

}  // namespace

const std::vector<Hook>& Hooks::of(const std::string& phase) const {
  static const std::vector<Hook> kNone;
  auto it = phases.find(phase);
  return it == phases.end() ? kNone : it->second;
}

Result<Hooks> parse_hooks(const json& config) {
  Hooks hooks;
  if (!config.is_object() || !config.contains("hooks") || !config["hooks"].is_object())
    return hooks;
  for (const std::string phase : kPhases) {
    const json& section = config["hooks"];
    if (!section.contains(phase) || section[phase].is_null()) continue;
    const json& list = section[phase];
    if (!list.is_array()) return fail("hooks." + phase + " must be an array");
    for (size_t i = 0; i < list.size(); ++i)
      hooks.phases[phase].push_back(
          TRY(parse_hook(list[i], "hooks." + phase + "[" + std::to_string(i) + "]")));
  }
  return hooks;
}

}  // namespace vessel::oci

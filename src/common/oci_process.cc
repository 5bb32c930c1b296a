// process (and what an exec's --process file holds): the spec model's part for one process
// (common/oci_spec.h).
#include <sys/resource.h>

#include <algorithm>

#include "common/oci_fields.h"
#include "common/oci_spec.h"

namespace vessel::oci {

using nlohmann::json;

namespace {

constexpr const char* kCapabilityNames[] = {"CAP_CHOWN",
                                            "CAP_DAC_OVERRIDE",
                                            "CAP_DAC_READ_SEARCH",
                                            "CAP_FOWNER",
                                            "CAP_FSETID",
                                            "CAP_KILL",
                                            "CAP_SETGID",
                                            "CAP_SETUID",
                                            "CAP_SETPCAP",
                                            "CAP_LINUX_IMMUTABLE",
                                            "CAP_NET_BIND_SERVICE",
                                            "CAP_NET_BROADCAST",
                                            "CAP_NET_ADMIN",
                                            "CAP_NET_RAW",
                                            "CAP_IPC_LOCK",
                                            "CAP_IPC_OWNER",
                                            "CAP_SYS_MODULE",
                                            "CAP_SYS_RAWIO",
                                            "CAP_SYS_CHROOT",
                                            "CAP_SYS_PTRACE",
                                            "CAP_SYS_PACCT",
                                            "CAP_SYS_ADMIN",
                                            "CAP_SYS_BOOT",
                                            "CAP_SYS_NICE",
                                            "CAP_SYS_RESOURCE",
                                            "CAP_SYS_TIME",
                                            "CAP_SYS_TTY_CONFIG",
                                            "CAP_MKNOD",
                                            "CAP_LEASE",
                                            "CAP_AUDIT_WRITE",
                                            "CAP_AUDIT_CONTROL",
                                            "CAP_SETFCAP",
                                            "CAP_MAC_OVERRIDE",
                                            "CAP_MAC_ADMIN",
                                            "CAP_SYSLOG",
                                            "CAP_WAKE_ALARM",
                                            "CAP_BLOCK_SUSPEND",
                                            "CAP_AUDIT_READ",
                                            "CAP_PERFMON",
                                            "CAP_BPF",
                                            "CAP_CHECKPOINT_RESTORE"};

constexpr std::pair<const char*, int> kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME}};

// A capability list as a mask. Names this build does not know are skipped, as runc does with a
// warning. A set the spec leaves out is empty, as with runc (Podman omits empty lists:
// --cap-drop=all gives "capabilities": {}).
Result<std::optional<uint64_t>> capability_set(const json& capabilities, const char* key) {
  if (!capabilities.contains(key) || capabilities[key].is_null()) return std::optional<uint64_t>{0};
  if (!capabilities[key].is_array())
    return fail(std::string("process.capabilities.") + key + " must be an array");
  uint64_t mask = 0;
  for (const auto& name : capabilities[key]) {
    if (!name.is_string())
      return fail(std::string("process.capabilities.") + key + " must hold names");
    if (auto number = capability_number(name.get<std::string>())) mask |= uint64_t{1} << *number;
  }
  return std::optional<uint64_t>{mask};
}

Result<User> parse_user(const json& user_object) {
  if (!user_object.is_object()) return fail("process.user must be an object");
  const json& user = user_object;
  User parsed;
  if (user.contains("uid")) parsed.uid = TRY(unsigned_field<uid_t>(user, "uid", "process.user"));
  if (user.contains("gid")) parsed.gid = TRY(unsigned_field<gid_t>(user, "gid", "process.user"));
  if (user.contains("umask"))
    parsed.umask = TRY(unsigned_field<mode_t>(user, "umask", "process.user"));
  if (user.contains("additionalGids") && !user["additionalGids"].is_null()) {
    if (!user["additionalGids"].is_array())
      return fail("process.user.additionalGids must be an array");
    for (const auto& gid : user["additionalGids"])
      parsed.additional_gids.push_back(
          TRY(unsigned_value<gid_t>(gid, "process.user.additionalGids")));
  }
  return parsed;
}

Result<Capabilities> parse_capabilities(const json& caps) {
  Capabilities capabilities;
  capabilities.bounding = TRY(capability_set(caps, "bounding"));
  capabilities.effective = TRY(capability_set(caps, "effective"));
  capabilities.inheritable = TRY(capability_set(caps, "inheritable"));
  capabilities.permitted = TRY(capability_set(caps, "permitted"));
  capabilities.ambient = TRY(capability_set(caps, "ambient"));
  return capabilities;
}

Result<std::vector<Rlimit>> parse_rlimits(const json& list) {
  std::vector<Rlimit> rlimits;
  for (const auto& entry : list) {
    std::string type = entry.is_object() && entry.contains("type") && entry["type"].is_string()
                           ? entry["type"].get<std::string>()
                           : "";
    const auto* known = std::find_if(std::begin(kRlimits), std::end(kRlimits),
                                     [&](const auto& pair) { return type == pair.first; });
    if (known == std::end(kRlimits)) return fail("process.rlimits: unknown type \"" + type + "\"");
    if (!entry.contains("soft") || !entry.contains("hard") || !entry["soft"].is_number_unsigned() ||
        !entry["hard"].is_number_unsigned())
      return fail("process.rlimits: " + type + " needs soft and hard limits");
    rlimits.push_back(
        {known->second, entry["soft"].get<uint64_t>(), entry["hard"].get<uint64_t>()});
  }
  return rlimits;
}

}  // namespace

std::vector<std::string> capability_names() {
  return std::vector<std::string>(std::begin(kCapabilityNames), std::end(kCapabilityNames));
}

std::optional<int> capability_number(std::string_view name) {
  for (size_t i = 0; i < std::size(kCapabilityNames); ++i)
    if (name == kCapabilityNames[i]) return static_cast<int>(i);
  return std::nullopt;
}

Result<Process> parse_process(const json& object) {
  if (!object.is_object()) return fail("process must be an object");
  Process process;
  if (object.contains("terminal")) {
    if (!object["terminal"].is_boolean()) return fail("process.terminal must be true or false");
    process.terminal = object["terminal"].get<bool>();
  }
  process.args = TRY(string_list(object, "args", "process"));
  if (process.args.empty()) return fail("process.args must name the program to run");
  process.env = TRY(string_list(object, "env", "process"));
  if (object.contains("cwd")) {
    if (!object["cwd"].is_string()) return fail("process.cwd must be a string");
    process.cwd = object["cwd"].get<std::string>();
  }
  if (process.cwd.empty() || process.cwd[0] != '/')
    return fail("process.cwd must be an absolute path");
  if (object.contains("user")) process.user = TRY(parse_user(object["user"]));
  if (object.contains("capabilities") && object["capabilities"].is_object())
    process.capabilities = TRY(parse_capabilities(object["capabilities"]));
  if (object.contains("noNewPrivileges") && object["noNewPrivileges"].is_boolean())
    process.no_new_privileges = object["noNewPrivileges"].get<bool>();
  if (object.contains("rlimits") && object["rlimits"].is_array())
    process.rlimits = TRY(parse_rlimits(object["rlimits"]));
  if (object.contains("oomScoreAdj") && !object["oomScoreAdj"].is_null()) {
    const json& adj = object["oomScoreAdj"];
    if (!adj.is_number_integer() || adj.get<int64_t>() < -1000 || adj.get<int64_t>() > 1000)
      return fail("process.oomScoreAdj must be an integer from -1000 to 1000");
    process.oom_score_adj = adj.get<int>();
  }
  return process;
}

}  // namespace vessel::oci

#include "common/oci_spec.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/oci_fields.h"
#include "common/sys.h"

namespace vessel::oci {

using nlohmann::json;

const Namespace* Spec::find_namespace(std::string_view type) const {
  for (const auto& ns : namespaces)
    if (ns.type == type) return &ns;
  return nullptr;
}

std::optional<uint32_t> host_id(const std::vector<IdMapping>& mappings, uint32_t id) {
  if (mappings.empty()) return id;
  for (const auto& mapping : mappings)
    if (id >= mapping.container && id - mapping.container < mapping.size)
      return mapping.host + (id - mapping.container);
  return std::nullopt;
}

// A signed number field of linux.resources; absent or null: no limit.
static Result<std::optional<int64_t>> resource_number(const json& section, const char* key,
                                                      const std::string& where) {
  if (!section.contains(key) || section[key].is_null()) return std::optional<int64_t>{};
  if (!section[key].is_number_integer())
    return fail("linux.resources." + where + "." + key + " must be an integer");
  return std::optional<int64_t>{section[key].get<int64_t>()};
}

// linux.resources.devices: each rule's allow, type, major, minor and access, checked.
static Result<std::vector<DeviceRule>> device_rules(const json& list) {
  constexpr size_t kMaxRules = 1024;
  if (!list.is_array() || list.size() > kMaxRules)
    return fail("linux.resources.devices must be an array of at most 1024 rules");
  std::vector<DeviceRule> rules;
  for (const auto& entry : list) {
    if (!entry.is_object() || !entry.contains("allow") || !entry["allow"].is_boolean())
      return fail("every linux.resources.devices rule needs allow: true or false");
    DeviceRule rule;
    rule.allow = entry["allow"];
    std::string type = entry.value("type", "a");
    if (type != "a" && type != "b" && type != "c")
      return fail("linux.resources.devices: type \"" + type + "\" is not a, b or c");
    rule.type = type[0];
    for (auto [key, field] : {std::pair{"major", &rule.major}, std::pair{"minor", &rule.minor}}) {
      if (!entry.contains(key) || entry[key].is_null()) continue;
      if (!entry[key].is_number_integer() || entry[key].get<int64_t>() < -1 ||
          entry[key].get<int64_t>() > 0xffffffffLL)
        return fail(std::string("linux.resources.devices: ") + key + " must be a device number");
      *field = entry[key].get<int64_t>();
    }
    if (entry.contains("access") && entry["access"].is_string()) {
      rule.access = 0;
      for (char c : entry["access"].get<std::string>()) {
        unsigned bit = c == 'm' ? 1 : c == 'r' ? 2 : c == 'w' ? 4 : 0;
        if (!bit) return fail("linux.resources.devices: access may hold only r, w and m");
        rule.access |= bit;
      }
      if (rule.access == 0) rule.access = 7;  // "": every access, as runc reads it
    }
    rules.push_back(rule);
  }
  return rules;
}

Result<Resources> parse_resources(const json& resources) {
  Resources out;
  if (!resources.is_object()) return out;
  if (resources.contains("memory") && resources["memory"].is_object()) {
    out.memory_limit = TRY(resource_number(resources["memory"], "limit", "memory"));
    out.memory_swap = TRY(resource_number(resources["memory"], "swap", "memory"));
  }
  if (resources.contains("cpu") && resources["cpu"].is_object()) {
    const json& cpu = resources["cpu"];
    out.cpu_quota = TRY(resource_number(cpu, "quota", "cpu"));
    if (auto period = TRY(resource_number(cpu, "period", "cpu")); period && *period > 0)
      out.cpu_period = static_cast<uint64_t>(*period);
    if (cpu.contains("cpus") && cpu["cpus"].is_string()) out.cpuset_cpus = cpu["cpus"];
    if (cpu.contains("mems") && cpu["mems"].is_string()) out.cpuset_mems = cpu["mems"];
    if (auto shares = TRY(resource_number(cpu, "shares", "cpu")); shares && *shares > 0)
      out.cpu_shares = static_cast<uint64_t>(*shares);
  }
  if (resources.contains("pids") && resources["pids"].is_object())
    out.pids_limit = TRY(resource_number(resources["pids"], "limit", "pids"));
  if (resources.contains("devices") && !resources["devices"].is_null())
    out.devices = TRY(device_rules(resources["devices"]));
  return out;
}

// linux.uidMappings or gidMappings: at most the kernel's 340 lines, each range inside 32 bits.
static Result<std::vector<IdMapping>> id_mappings(const json& linux_section, const char* key) {
  std::vector<IdMapping> out;
  if (!linux_section.contains(key) || linux_section[key].is_null()) return out;
  const std::string where = std::string("linux.") + key;
  if (!linux_section[key].is_array() || linux_section[key].size() > 340)
    return fail(where + " must be an array of at most 340 mappings");
  for (const auto& entry : linux_section[key]) {
    if (!entry.is_object() || !entry.contains("containerID") || !entry.contains("hostID") ||
        !entry.contains("size"))
      return fail(where + ": every mapping needs containerID, hostID and size");
    IdMapping mapping{TRY(unsigned_field<uint32_t>(entry, "containerID", where)),
                      TRY(unsigned_field<uint32_t>(entry, "hostID", where)),
                      TRY(unsigned_field<uint32_t>(entry, "size", where))};
    if (mapping.size == 0 || uint64_t{mapping.container} + mapping.size > (uint64_t{1} << 32) ||
        uint64_t{mapping.host} + mapping.size > (uint64_t{1} << 32))
      return fail(where + ": a mapping's size must be at least 1 and keep it within 32 bits");
    out.push_back(mapping);
  }
  return out;
}

static Result<std::vector<Namespace>> namespace_list(const json& linux_section) {
  std::vector<Namespace> out;
  if (!linux_section.contains("namespaces") || linux_section["namespaces"].is_null()) return out;
  if (!linux_section["namespaces"].is_array()) return fail("linux.namespaces must be an array");
  for (const auto& entry : linux_section["namespaces"]) {
    if (!entry.is_object() || !entry.contains("type") || !entry["type"].is_string())
      return fail("every linux.namespaces entry needs a type");
    Namespace ns{entry["type"], ""};
    if (std::find(std::begin(kNamespaceTypes), std::end(kNamespaceTypes), ns.type) ==
        std::end(kNamespaceTypes))
      return fail("linux.namespaces: unknown namespace type \"" + ns.type + "\"");
    for (const auto& earlier : out)
      if (earlier.type == ns.type)
        return fail("linux.namespaces names the " + ns.type + " namespace twice");
    if (entry.contains("path") && !entry["path"].is_null()) {
      if (!entry["path"].is_string()) return fail("linux.namespaces: path must be a string");
      ns.path = entry["path"];
      if (!ns.path.empty() && ns.path[0] != '/')
        return fail("linux.namespaces: the " + ns.type + " namespace path " + ns.path +
                    " must be absolute");
    }
    out.push_back(std::move(ns));
  }
  return out;
}

static Result<std::vector<Device>> device_list(const json& linux_section) {
  std::vector<Device> out;
  if (!linux_section.contains("devices") || linux_section["devices"].is_null()) return out;
  if (!linux_section["devices"].is_array()) return fail("linux.devices must be an array");
  for (const auto& entry : linux_section["devices"]) {
    if (!entry.is_object() || !entry.contains("path") || !entry["path"].is_string() ||
        !entry.contains("type") || !entry["type"].is_string())
      return fail("every linux.devices entry needs a path and a type");
    Device device;
    device.path = entry["path"];
    std::string type = entry["type"];
    if (device.path.size() < 2 || device.path[0] != '/' ||
        device.path.find("/../") != std::string::npos || device.path.ends_with("/.."))
      return fail("linux.devices: " + device.path +
                  " must be an absolute path inside the container");
    if (type != "c" && type != "u" && type != "b" && type != "p")
      return fail("linux.devices: " + device.path + " has type \"" + type +
                  "\"; it must be c, u, b or p");
    device.type = type[0];
    const std::string where = "linux.devices " + device.path;
    if (device.type != 'p') {
      if (!entry.contains("major") || !entry.contains("minor"))
        return fail(where + " needs a major and a minor number");
      device.major = TRY(unsigned_field<uint32_t>(entry, "major", where));
      device.minor = TRY(unsigned_field<uint32_t>(entry, "minor", where));
    }
    if (entry.contains("fileMode") && !entry["fileMode"].is_null())
      device.file_mode = TRY(unsigned_field<mode_t>(entry, "fileMode", where)) & 07777;
    if (entry.contains("uid") && !entry["uid"].is_null())
      device.uid = TRY(unsigned_field<uid_t>(entry, "uid", where));
    if (entry.contains("gid") && !entry["gid"].is_null())
      device.gid = TRY(unsigned_field<gid_t>(entry, "gid", where));
    out.push_back(std::move(device));
  }
  return out;
}

// The linux section: sysctls, cgroups, resources, paths, namespaces, id mappings, devices,
// propagation and seccomp.
static Result<void> parse_linux(const json& linux_section, Spec& spec) {
  if (linux_section.contains("sysctl") && linux_section["sysctl"].is_object())
    for (const auto& [key, value] : linux_section["sysctl"].items())
      if (value.is_string()) spec.sysctl.emplace_back(key, value.get<std::string>());
  if (linux_section.contains("cgroupsPath") && linux_section["cgroupsPath"].is_string())
    spec.cgroups_path = linux_section["cgroupsPath"].get<std::string>();
  if (linux_section.contains("resources"))
    spec.resources = TRY(parse_resources(linux_section["resources"]));
  spec.masked_paths = TRY(string_list(linux_section, "maskedPaths", "linux"));
  spec.readonly_paths = TRY(string_list(linux_section, "readonlyPaths", "linux"));
  spec.namespaces = TRY(namespace_list(linux_section));
  spec.uid_mappings = TRY(id_mappings(linux_section, "uidMappings"));
  spec.gid_mappings = TRY(id_mappings(linux_section, "gidMappings"));
  spec.devices = TRY(device_list(linux_section));
  if (linux_section.contains("rootfsPropagation") &&
      !linux_section["rootfsPropagation"].is_null()) {
    static const char* kPropagations[] = {"shared",  "rshared",  "slave",      "rslave",
                                          "private", "rprivate", "unbindable", "runbindable"};
    const json& value = linux_section["rootfsPropagation"];
    if (!value.is_string() || std::find(std::begin(kPropagations), std::end(kPropagations),
                                        value.get<std::string>()) == std::end(kPropagations))
      return fail(
          "linux.rootfsPropagation must be one of shared, slave, private, unbindable (or their "
          "r- forms)");
    spec.rootfs_propagation = value.get<std::string>();
  }
  if (linux_section.contains("seccomp")) spec.seccomp = linux_section["seccomp"];
  return {};
}

Result<Spec> parse_spec(const json& config) {
  if (!config.is_object()) return fail("the top level must be a JSON object");
  Spec spec;
  if (!config.contains("ociVersion") || !config["ociVersion"].is_string())
    return fail("ociVersion is missing");
  spec.oci_version = config["ociVersion"].get<std::string>();
  if (!config.contains("process")) return fail("process is missing");
  spec.process = TRY(parse_process(config["process"]));
  if (!config.contains("root") || !config["root"].is_object() || !config["root"].contains("path") ||
      !config["root"]["path"].is_string())
    return fail("root.path is missing");
  spec.root_path = config["root"]["path"].get<std::string>();
  if (config["root"].contains("readonly")) {
    if (!config["root"]["readonly"].is_boolean())
      return fail("root.readonly must be true or false");
    spec.root_readonly = config["root"]["readonly"].get<bool>();
  }
  if (config.contains("hostname") && config["hostname"].is_string())
    spec.hostname = config["hostname"];
  if (config.contains("domainname") && config["domainname"].is_string())
    spec.domainname = config["domainname"];
  if (config.contains("mounts") && !config["mounts"].is_null()) {
    if (!config["mounts"].is_array()) return fail("mounts must be an array");
    for (const auto& entry : config["mounts"]) {
      if (!entry.is_object() || !entry.contains("destination") || !entry["destination"].is_string())
        return fail("every mount needs a destination");
      Mount mount;
      mount.destination = entry["destination"];
      if (mount.destination.empty() || mount.destination[0] != '/')
        return fail("mount destination " + mount.destination + " must be an absolute path");
      if (entry.contains("type") && entry["type"].is_string()) mount.type = entry["type"];
      if (entry.contains("source") && entry["source"].is_string()) mount.source = entry["source"];
      mount.options = TRY(string_list(entry, "options", "mount " + mount.destination));
      spec.mounts.push_back(std::move(mount));
    }
  }
  if (config.contains("linux") && config["linux"].is_object())
    TRY(parse_linux(config["linux"], spec));
  spec.hooks = TRY(parse_hooks(config));
  if (config.contains("annotations") && config["annotations"].is_object())
    for (const auto& [key, value] : config["annotations"].items())
      if (value.is_string()) spec.annotations[key] = value.get<std::string>();
  spec.document = config;
  return spec;
}

Result<Spec> parse_spec_text(const std::string& text, const std::string& where) {
  json config;
  try {
    config = json::parse(text);
  } catch (const json::exception& error) {  // parse errors, and numbers out of range
    // nlohmann's message reads "[json.exception.parse_error.101] parse error at line 1, column 2:
    // ..."
    std::string detail = error.what();
    size_t at = detail.starts_with("[json.exception") ? detail.find("] ") : std::string::npos;
    return fail(where + " is not valid JSON (" +
                (at == std::string::npos ? detail : detail.substr(at + 2)) + ")");
  }
  return parse_spec(config).map_error([&](Error error) {
    error.message = where + ": " + error.message;
    return error;
  });
}

Result<Spec> load_bundle(const std::string& bundle) {
  std::string path = bundle + "/config.json";
  if (!sys::exists(path)) return fail(ENOENT, "bundle " + bundle + " has no config.json");
  std::string text = TRY(sys::read_file(path, 4 << 20));
  Spec spec = TRY(parse_spec_text(text, path));
  if (spec.root_path[0] != '/') spec.root_path = bundle + "/" + spec.root_path;
  struct stat st;
  if (::stat(spec.root_path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
    return fail(ENOENT, "the container's root filesystem " + spec.root_path +
                            " does not exist: check root.path in " + path);
  return spec;
}

}  // namespace vessel::oci

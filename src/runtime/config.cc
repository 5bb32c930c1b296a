#include "runtime/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <type_traits>

#include "common/sys.h"

namespace vessel::runtime {

namespace {

// Guest assets installed beside the binaries (make install), or built in the build tree.
std::string default_asset_dir() {
  std::string dir = companion_dir();
  std::string installed = dir + "/../share/vessel";
  if (sys::exists(installed + "/vmlinux")) return installed;
  return dir + "/guest";
}

std::vector<std::string> search_path() {
  std::vector<std::string> paths;
  if (const char* explicit_path = std::getenv("VESSEL_CONFIG"); explicit_path && *explicit_path)
    return {explicit_path};
  if (const char* home = std::getenv("HOME"); home && *home)
    paths.push_back(std::string(home) + "/.config/vessel/configuration.toml");
  paths.push_back("/etc/vessel/configuration.toml");
  paths.push_back(companion_dir() + "/../share/vessel/configuration.toml");
  return paths;
}

}  // namespace

std::string companion_dir() {
  auto has_shim = [](const std::string& dir) { return sys::exists(dir + "/vessel-shim"); };
  std::string own = sys::executable_dir();
  if (has_shim(own)) return own;
  if (has_shim(VESSEL_BUILD_BIN_DIR)) return VESSEL_BUILD_BIN_DIR;
  return sys::first_on_path(has_shim).value_or(own);
}

namespace {

// Every key vessel reads: Kata's names where the meaning is the same. Anything else in a file is
// an error naming the file, the line and the key.
enum class Type { String, Integer, Boolean, StringArray };
struct Key {
  const char* section;
  const char* name;
  Type type;
};
constexpr Key kKeys[] = {
    {"hypervisor.qemu", "path", Type::String},
    {"hypervisor.qemu", "kernel", Type::String},
    {"hypervisor.qemu", "initrd", Type::String},
    {"hypervisor.qemu", "machine_type", Type::String},
    {"hypervisor.qemu", "kernel_params", Type::String},
    {"hypervisor.qemu", "accel", Type::String},
    {"hypervisor.qemu", "default_vcpus", Type::Integer},
    {"hypervisor.qemu", "default_memory", Type::Integer},
    {"hypervisor.qemu", "enable_debug", Type::Boolean},
    {"hypervisor.qemu", "enable_annotations", Type::StringArray},
    {"hypervisor.qemu", "default_maxvcpus", Type::Integer},
    {"hypervisor.qemu", "default_maxmemory", Type::Integer},
    {"agent", "enable_debug", Type::Boolean},
    {"runtime", "enable_debug", Type::Boolean},
    {"factory", "enable_template", Type::Boolean},
    {"factory", "template_path", Type::String},
};

const char* type_name(Type type) {
  switch (type) {
    case Type::String:
      return "a string";
    case Type::Integer:
      return "an integer";
    case Type::Boolean:
      return "true or false";
    case Type::StringArray:
      return "an array of strings";
  }
  return "";
}

bool has_type(const toml::node& node, Type type) {
  switch (type) {
    case Type::String:
      return node.is_string();
    case Type::Integer:
      return node.is_integer();
    case Type::Boolean:
      return node.is_boolean();
    case Type::StringArray:
      return node.is_array() && node.as_array()->is_homogeneous(toml::node_type::string);
  }
  return false;
}

const char* node_type_name(const toml::node& node) {
  if (node.is_string()) return "a string";
  if (node.is_integer()) return "an integer";
  if (node.is_floating_point()) return "a number with a fraction";
  if (node.is_boolean()) return "a boolean";
  if (node.is_array()) return "an array";
  if (node.is_table()) return "a table";
  return "a date or time";
}

bool is_section(const std::string& path) {
  for (const auto& key : kKeys)
    if (path == key.section || std::string(key.section).starts_with(path + ".")) return true;
  return false;
}

std::string keys_of(const std::string& section) {
  std::string names;
  for (const auto& key : kKeys)
    if (section == key.section) names += std::string(names.empty() ? "" : ", ") + key.name;
  return names;
}

// FILE:LINE, where a value came from.
std::string where(const std::string& source, const toml::node& node) {
  return source + ":" + std::to_string(node.source().begin.line);
}

// Checks every key below `table` (at `path`) against kKeys and records the known ones.
Result<void> walk(const toml::table& table, const std::string& path, const std::string& source,
                  std::map<std::string, const toml::node*>& found) {
  for (const auto& [name, node] : table) {
    std::string full =
        path.empty() ? std::string(name.str()) : path + "." + std::string(name.str());
    if (node.is_table() && is_section(full)) {
      TRY(walk(*node.as_table(), full, source, found));
      continue;
    }
    const Key* key = nullptr;
    for (const auto& candidate : kKeys)
      if (path == candidate.section && name.str() == candidate.name) key = &candidate;
    if (!key) {
      std::string known = keys_of(path);
      return fail(EINVAL, where(source, node) + ": " + full + ": unknown " +
                              (node.is_table() ? "section" : "key") +
                              (known.empty() ? std::string("; vessel reads [hypervisor.qemu], "
                                                           "[agent], [runtime] and [factory]")
                                             : "; [" + path + "] takes " + known));
    }
    if (!has_type(node, key->type) &&
        !(key->type == Type::StringArray && node.is_array() && node.as_array()->empty()))
      return fail(EINVAL, where(source, node) + ": " + full + ": must be " + type_name(key->type) +
                              ", not " + node_type_name(node));
    found[full] = &node;
  }
  return {};
}

// Copies each value the file set into `config`, and records where it came from.
void take_values(const std::map<std::string, const toml::node*>& found, const std::string& source,
                 Config& config) {
  auto take = [&](const std::string& key, auto& field) {
    auto it = found.find(key);
    if (it == found.end()) return;
    using Field = std::remove_reference_t<decltype(field)>;
    if constexpr (std::is_same_v<Field, std::string>) {
      field = **it->second->as_string();
    } else if constexpr (std::is_same_v<Field, std::vector<std::string>>) {
      field.clear();
      for (const auto& item : *it->second->as_array()) field.push_back(**item.as_string());
    } else if constexpr (std::is_same_v<Field, bool>)
      field = **it->second->as_boolean();
    else
      field = static_cast<Field>(std::clamp<int64_t>(**it->second->as_integer(), 0, 1 << 20));
    config.origin[key] = where(source, *it->second);
  };
  take("hypervisor.qemu.path", config.hypervisor_path);
  take("hypervisor.qemu.kernel", config.kernel);
  take("hypervisor.qemu.initrd", config.initrd);
  take("hypervisor.qemu.machine_type", config.machine_type);
  take("hypervisor.qemu.kernel_params", config.kernel_params);
  take("hypervisor.qemu.accel", config.accel);
  take("hypervisor.qemu.default_vcpus", config.default_vcpus);
  take("hypervisor.qemu.default_memory", config.default_memory);
  take("hypervisor.qemu.enable_debug", config.hypervisor_debug);
  take("hypervisor.qemu.enable_annotations", config.enable_annotations);
  take("hypervisor.qemu.default_maxvcpus", config.default_maxvcpus);
  take("hypervisor.qemu.default_maxmemory", config.default_maxmemory);
  take("agent.enable_debug", config.agent_debug);
  take("runtime.enable_debug", config.runtime_debug);
  take("factory.enable_template", config.enable_template);
  take("factory.template_path", config.template_path);
}

// The values of the right type that are still out of range; the error names where each was set.
Result<void> check_values(const Config& config, const std::string& source) {
  auto at = [&](const std::string& key) {
    return config.origin.contains(key) ? config.origin.at(key) : source;
  };
  if (config.accel != "auto" && config.accel != "kvm" && config.accel != "tcg")
    return fail(at("hypervisor.qemu.accel") +
                ": hypervisor.qemu.accel: must be \"auto\", \"kvm\" or \"tcg\", not \"" +
                config.accel + "\"");
  if (config.default_vcpus < 1 || config.default_vcpus > 64)
    return fail(at("hypervisor.qemu.default_vcpus") +
                ": hypervisor.qemu.default_vcpus: must be from 1 to 64");
  if (config.default_memory < 64)
    return fail(at("hypervisor.qemu.default_memory") +
                ": hypervisor.qemu.default_memory: must be at least 64 (MiB)");
  return {};
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& source) {
  Config config;
  config.source = source;
  std::string assets = default_asset_dir();
  config.kernel = assets + "/vmlinux";
  config.initrd = assets + "/initrd.img";
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    const auto& at = error.source().begin;
    return fail(source + ":" + std::to_string(at.line) + ": " + std::string(error.description()) +
                ": fix the configuration file");
  }
  std::map<std::string, const toml::node*> found;
  TRY(walk(table, "", source, found));
  take_values(found, source, config);
  TRY(check_values(config, source));
  return config;
}

Result<BaseSize> base_size(const Config& config,
                           const std::map<std::string, std::string>& annotations) {
  BaseSize size{config.default_memory, config.default_vcpus};
  for (const auto& [key, value] : annotations) {
    std::string name;
    for (const char* prefix : {"io.katacontainers.config.hypervisor.", "io.vessel."})
      if (key.starts_with(prefix)) name = key.substr(std::strlen(prefix));
    if (name != "default_memory" && name != "default_vcpus") continue;
    if (std::find(config.enable_annotations.begin(), config.enable_annotations.end(), name) ==
        config.enable_annotations.end())
      return fail(EPERM,
                  "annotation " + key + " is not enabled: add \"" + name +
                      "\" to [hypervisor.qemu] enable_annotations in " +
                      (config.source == "built-in defaults" ? "/etc/vessel/configuration.toml"
                                                            : config.source));
    char* end = nullptr;
    unsigned long number = std::strtoul(value.c_str(), &end, 10);
    bool memory = name == "default_memory";
    unsigned ceiling = memory ? config.default_maxmemory : config.default_maxvcpus;
    unsigned floor = memory ? 64 : 1;
    if (value.empty() || *end != '\0' || number < floor || number > ceiling)
      return fail(EINVAL, "annotation " + key + " = \"" + value + "\": must be a whole number of " +
                              (memory ? "MiB" : "vCPUs") + " from " + std::to_string(floor) +
                              " to " + std::to_string(ceiling) + " (" +
                              (memory ? "default_maxmemory" : "default_maxvcpus") +
                              " in the configuration)");
    (memory ? size.memory_mib : size.vcpus) = static_cast<unsigned>(number);
  }
  return size;
}

Result<void> check_configured_paths(const Config& config) {
  for (const auto& [key, path] : {std::pair{"hypervisor.qemu.path", config.hypervisor_path},
                                  std::pair{"hypervisor.qemu.kernel", config.kernel},
                                  std::pair{"hypervisor.qemu.initrd", config.initrd}}) {
    auto origin = config.origin.find(key);
    if (origin == config.origin.end() || sys::exists(path)) continue;
    return fail(ENOENT, origin->second + ": " + key + ": " + path +
                            " does not exist: fix the path, or remove the key to use vessel's own");
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> config_search_path() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& path : search_path())
    out.emplace_back(path, sys::exists(path) ? "present" : "absent");
  return out;
}

Result<Config> load_config() {
  for (const auto& path : search_path()) {
    if (!sys::exists(path)) {
      if (std::getenv("VESSEL_CONFIG") && *std::getenv("VESSEL_CONFIG"))
        return fail(ENOENT, "VESSEL_CONFIG names " + path + ", which does not exist");
      continue;
    }
    std::string text = TRY(sys::read_file(path));
    Config config = TRY(parse_config(text, path));
    TRY(check_configured_paths(config));
    return config;
  }
  return parse_config("", "built-in defaults");
}

}  // namespace vessel::runtime

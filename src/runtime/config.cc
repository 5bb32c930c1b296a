#include "runtime/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>

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
  const char* path = std::getenv("PATH");
  std::string entries = path ? path : "/usr/local/bin:/usr/bin";
  for (size_t start = 0; start <= entries.size();) {
    size_t end = std::min(entries.find(':', start), entries.size());
    std::string dir = entries.substr(start, end - start);
    if (!dir.empty() && dir[0] == '/' && has_shim(dir)) return dir;
    start = end + 1;
  }
  return own;
}

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
    const auto& where = error.source().begin;
    return fail(source + " line " + std::to_string(where.line) + ": " +
                std::string(error.description()) + ": fix the configuration file");
  }
  auto qemu = table["hypervisor"]["qemu"];
  config.hypervisor_path = qemu["path"].value_or(config.hypervisor_path);
  config.kernel = qemu["kernel"].value_or(config.kernel);
  config.initrd = qemu["initrd"].value_or(config.initrd);
  config.machine_type = qemu["machine_type"].value_or(config.machine_type);
  config.kernel_params = qemu["kernel_params"].value_or(config.kernel_params);
  config.accel = qemu["accel"].value_or(config.accel);
  config.default_vcpus = qemu["default_vcpus"].value_or(config.default_vcpus);
  config.default_memory = qemu["default_memory"].value_or(config.default_memory);
  config.hypervisor_debug = qemu["enable_debug"].value_or(false);
  config.agent_debug = table["agent"]["enable_debug"].value_or(false);
  config.runtime_debug = table["runtime"]["enable_debug"].value_or(false);
  if (config.accel != "auto" && config.accel != "kvm" && config.accel != "tcg")
    return fail(source + ": [hypervisor.qemu] accel must be \"auto\", \"kvm\" or \"tcg\", not \"" +
                config.accel + "\"");
  if (config.default_vcpus < 1 || config.default_memory < 64)
    return fail(source +
                ": [hypervisor.qemu] needs default_vcpus >= 1 and default_memory >= 64 (MiB)");
  return config;
}

Result<Config> load_config() {
  for (const auto& path : search_path()) {
    if (!sys::exists(path)) {
      if (std::getenv("VESSEL_CONFIG") && *std::getenv("VESSEL_CONFIG"))
        return fail(ENOENT, "VESSEL_CONFIG names " + path + ", which does not exist");
      continue;
    }
    std::string text = TRY(sys::read_file(path));
    return parse_config(text, path);
  }
  return parse_config("", "built-in defaults");
}

}  // namespace vessel::runtime

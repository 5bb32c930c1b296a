#include <cstdio>
#include <string>

#include "runtime/commands/command.h"
#include "runtime/config.h"

namespace vessel::runtime {

namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return out + "\"";
}

}  // namespace

// `env`: the effective configuration as TOML, each value with where it came from, and the files
// looked up in order (as `kata-runtime env` shows its own).
Result<int> command_env(Context&, const Arguments& args) {
  ArgumentParser parser("env", args);
  TRY(parser.parse({}, {}));
  if (!parser.positional().empty()) return fail("vessel env takes no arguments");
  Config config = TRY(load_config());
  std::printf("# configuration files, in lookup order:\n");
  for (const auto& [path, state] : config_search_path())
    std::printf("#   %s (%s%s)\n", path.c_str(), state.c_str(),
                path == config.source ? ", used" : "");
  if (config.source == "built-in defaults") std::printf("# none found: built-in defaults\n");
  auto line = [&](const std::string& key, const std::string& value) {
    auto origin = config.origin.find(key);
    std::string name = key.substr(key.rfind('.') + 1);
    std::printf("%-18s = %-40s # %s\n", name.c_str(), value.c_str(),
                origin == config.origin.end() ? "default" : origin->second.c_str());
  };
  auto flag = [](bool value) { return std::string(value ? "true" : "false"); };
  std::printf("\n[hypervisor.qemu]\n");
  line("hypervisor.qemu.path", quoted(config.hypervisor_path));
  line("hypervisor.qemu.kernel", quoted(config.kernel));
  line("hypervisor.qemu.initrd", quoted(config.initrd));
  line("hypervisor.qemu.machine_type", quoted(config.machine_type));
  line("hypervisor.qemu.kernel_params", quoted(config.kernel_params));
  line("hypervisor.qemu.accel", quoted(config.accel));
  line("hypervisor.qemu.default_vcpus", std::to_string(config.default_vcpus));
  line("hypervisor.qemu.default_memory", std::to_string(config.default_memory));
  line("hypervisor.qemu.enable_debug", flag(config.hypervisor_debug));
  std::string enabled = "[";
  for (const auto& name : config.enable_annotations)
    enabled += (enabled.size() > 1 ? ", " : "") + quoted(name);
  line("hypervisor.qemu.enable_annotations", enabled + "]");
  line("hypervisor.qemu.default_maxvcpus", std::to_string(config.default_maxvcpus));
  line("hypervisor.qemu.default_maxmemory", std::to_string(config.default_maxmemory));
  std::printf("\n[agent]\n");
  line("agent.enable_debug", flag(config.agent_debug));
  std::printf("\n[runtime]\n");
  line("runtime.enable_debug", flag(config.runtime_debug));
  std::printf("\n[factory]\n");
  line("factory.enable_template", flag(config.enable_template));
  line("factory.template_path",
       quoted(config.template_path.empty() ? "STATE_ROOT/templates" : config.template_path));
  return 0;
}

}  // namespace vessel::runtime

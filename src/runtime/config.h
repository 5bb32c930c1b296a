// vessel's configuration: TOML with Kata's key names, looked up in $VESSEL_CONFIG,
// ~/.config/vessel/configuration.toml, /etc/vessel/configuration.toml, then the installed default
// beside the binaries; keys that no file sets keep the built-in defaults.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::runtime {

struct Config {
  std::string source;  // the file read, or "built-in defaults"
  // [hypervisor.qemu]
  std::string hypervisor_path = "/usr/bin/qemu-system-x86_64";
  std::string kernel;
  std::string initrd;
  std::string machine_type = "microvm";
  std::string kernel_params;
  std::string accel = "auto";  // vessel's own key: auto, kvm or tcg
  unsigned default_vcpus = 1;
  unsigned default_memory = 256;  // MiB
  // Per-container sizing by annotation (Kata's keys): which may be used, and their ceilings.
  std::vector<std::string> enable_annotations = {"default_memory", "default_vcpus"};
  unsigned default_maxvcpus = 16;
  unsigned default_maxmemory = 16384;  // MiB
  bool hypervisor_debug = false;
  // [agent], [runtime]
  bool agent_debug = false;
  bool runtime_debug = false;
  // [factory]: containers start from a VM template (shim/template.h, docs/templates.md).
  bool enable_template = true;
  std::string template_path;  // empty: STATE_ROOT/templates
  // "hypervisor.qemu.kernel" → "FILE:LINE" for each value a file set; the rest are defaults.
  std::map<std::string, std::string> origin;
};

Result<Config> load_config();
// The VM's base size for one container: the configuration's default_memory and default_vcpus,
// unless the spec's annotations (Kata's io.katacontainers.config.hypervisor.default_memory and
// default_vcpus, or vessel's io.vessel.default_memory and io.vessel.default_vcpus) set them,
// within enable_annotations and default_maxmemory / default_maxvcpus. The container's own limits
// are added to this by the shim.
struct BaseSize {
  unsigned memory_mib;
  unsigned vcpus;
};
Result<BaseSize> base_size(const Config& config,
                           const std::map<std::string, std::string>& annotations);

// Where vessel-shim and the guest image live: beside this binary (make install, the build tree),
// else the build tree this binary was built in, else the first vessel-shim on $PATH. So a copy
// of `vessel` elsewhere (Podman's --runtime=/some/copy) still finds its companions.
std::string companion_dir();
// Parses one file's text: every key is known and of its type, else the error names
// FILE:LINE: KEY. `source` names the file.
Result<Config> parse_config(const std::string& text, const std::string& source);
// Paths a file set (QEMU, kernel, initrd) must exist: FILE:LINE: KEY: PATH does not exist.
Result<void> check_configured_paths(const Config& config);
// The files looked up, in order, and whether each is there.
std::vector<std::pair<std::string, std::string>> config_search_path();

}  // namespace vessel::runtime

// What the CLI hands the shim in <state>/shim.json.
#pragma once

#include <string>

#include "common/result.h"

namespace vessel::shim {

struct ShimOptions {
  std::string id;
  std::string state_dir;
  std::string state_root;  // where per-host caches (the KVM verdict, the TSC rate) live
  std::string bundle;
  std::string console_socket;  // empty unless process.terminal
  std::string hypervisor_path;
  std::string kernel;
  std::string initrd;
  std::string machine_type;
  std::string kernel_params;
  std::string accel;  // auto, kvm or tcg
  unsigned vcpus = 1;
  unsigned memory_mib = 256;
  bool debug = false;
  bool template_enabled = false;  // [factory] enable_template
  std::string template_path;      // [factory] template_path
};

Result<ShimOptions> load_options(const std::string& path);

}  // namespace vessel::shim

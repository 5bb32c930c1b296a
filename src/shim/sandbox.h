// One sandbox: the VM booted for a container, the agent connection, the stdio relay, the
// control socket the CLI talks to, and the exit status the shim exits with.
//
// The shim's pid is "the container" for conmon, so Sandbox::run returns the exit code the shim
// must exit with: the workload's, or 128+N when it was killed by signal N.
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::shim {

// What the CLI hands the shim in <state>/shim.json.
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
};

Result<ShimOptions> load_options(const std::string& path);

// Boots the VM and creates the container, reporting success or the error on ready_fd, then
// relays until the container exits. Returns the shim's exit code.
int run_sandbox(const ShimOptions& options, UniqueFd ready_fd);

}  // namespace vessel::shim

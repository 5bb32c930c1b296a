// The QEMU implementation of Hypervisor: builds QEMU's command line from a VmConfig and runs
// QEMU as a child that dies with its parent, sandboxed with -sandbox on.
#pragma once

#include <string>
#include <vector>

#include "hypervisor/hypervisor.h"

namespace vessel::hypervisor {

// The descriptor numbers the agent socket and the taps have inside QEMU.
constexpr int kQemuAgentFd = 3;
constexpr int kQemuFirstTapFd = 4;

// QEMU's argv for `config` (pure: tested on its own).
std::vector<std::string> qemu_argv(const VmConfig& config);

}  // namespace vessel::hypervisor

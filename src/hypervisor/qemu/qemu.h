// The QEMU implementation of Hypervisor: builds QEMU's command line from a VmConfig and runs
// QEMU as a child that dies with its parent, in its jail (jail.h) and under -sandbox on.
#pragma once

#include <string>
#include <vector>

#include "hypervisor/hypervisor.h"

namespace vessel::hypervisor {

// The descriptor numbers the agent socket, the console and the taps have inside QEMU.
constexpr int kQemuAgentFd = 3;
constexpr int kQemuConsoleFd = 4;
constexpr int kQemuFirstTapFd = 5;
constexpr int kQemuMaxTaps = 16;
constexpr int kQemuIncomingFd = kQemuFirstTapFd + kQemuMaxTaps;
constexpr int kQemuMonitorFd = kQemuIncomingFd + 1;
constexpr int kQemuGuardFd = kQemuMonitorFd + 1;     // closed before exec
constexpr int kQemuFirstShareFd = kQemuGuardFd + 1;  // closed before exec

// Where QEMU finds the guest image and each share inside its jail.
constexpr const char* kJailKernel = "/vessel/kernel";
constexpr const char* kJailInitrd = "/vessel/initrd";
constexpr const char* kJailFiles = "/vessel/files";  // the files share's root: those files alone
std::string jail_share_path(const Share& share);

// The directories in QEMU's jail whose files may take setuid and setgid bits (Ownership::Host).
std::vector<std::string> setuid_roots(const VmConfig& config);

// QEMU's argv for `config`, with the paths it has in its jail (pure: tested on its own).
std::vector<std::string> qemu_argv(const VmConfig& config);

}  // namespace vessel::hypervisor

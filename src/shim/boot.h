// Assembling and starting the VM for one container (Firecracker's "builder"): the accelerator,
// the guest image, the root filesystem and volume shares, the NICs, and the descriptors QEMU
// talks to the shim on (the agent channel, the serial console, QEMU's own messages).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/channel/host_messages.h"
#include "common/oci_spec.h"
#include "common/unique_fd.h"
#include "hypervisor/hypervisor.h"
#include "shim/binds.h"
#include "shim/guest_output.h"
#include "shim/network.h"
#include "shim/options.h"

namespace vessel::shim {

struct BootedVm {
  std::unique_ptr<hypervisor::Hypervisor> vm;
  UniqueFd agent;  // the shim's end of the agent channel
  GuestOutput console;
  GuestOutput qemu_log;
  std::string warning;         // the TCG fallback, if it happened (the caller says so)
  bool kvm_by_choice = false;  // KVM chosen by `accel = "auto"`: a failed KVM start may use TCG
  // Restored from this template (shim/template.h), whose guest must be resumed first with
  // `resume`; empty when booted.
  std::string restored_from;
  channel::from_host::Resume resume;
  // How to make the template this VM could have come from; null when it cannot come from one.
  nlohmann::json template_request;
};

enum class TemplateUse { Allowed, Never };

// Caps on what the guest can make the shim keep.
constexpr size_t kConsoleLogCap = 2 << 20;
constexpr size_t kQemuLogCap = 512 << 10;
constexpr size_t kShimLogCap = 2 << 20;
constexpr size_t kGuestOutputRate = 256 << 10;  // bytes a second, averaged

// The VM a container gets, by Kata's rule: the configured default_memory plus the container's
// memory limit (the guest's kernel and agent live in the default), and as many vCPUs as the CPU
// quota asks (rounded up) and its cpuset names, never fewer than default_vcpus.
struct VmSize {
  unsigned memory_mib;
  unsigned vcpus;
};
constexpr unsigned kMaxVcpus = 64;
VmSize vm_size(const ShimOptions& options, const oci::Resources& resources);

// The pod's total that containerd's CRI puts on a pod's sandbox (pause) container: the sum of
// its containers' limits, from the kubelet (io.kubernetes.cri.sandbox-memory, -cpu-quota and
// -cpu-period); each absent, malformed or not positive one is left unset.
oci::Resources cri_pod_limits(const std::map<std::string, std::string>& annotations);

// `sizing`: the limits the VM is sized for (the container's, or its pod's: sandbox.cc).
Result<BootedVm> boot_vm(const ShimOptions& options, const oci::Spec& spec,
                         const oci::Resources& sizing, const Network& network,
                         const BindPlan& binds, int state_dir, TemplateUse use);

}  // namespace vessel::shim

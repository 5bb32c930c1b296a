#include "shim/boot.h"

#include <fcntl.h>

#include <algorithm>

#include "common/channel/messages.h"
#include "common/log.h"
#include "common/sys.h"
#include "hypervisor/accel.h"
#include "shim/template.h"

namespace vessel::shim {

oci::Resources cri_pod_limits(const std::map<std::string, std::string>& annotations) {
  oci::Resources limits;
  auto number = [&](const char* key) {
    auto it = annotations.find(std::string("io.kubernetes.cri.") + key);
    return sys::positive_number(it == annotations.end() ? "" : it->second);
  };
  limits.memory_limit = number("sandbox-memory");
  limits.cpu_quota = number("sandbox-cpu-quota");
  if (auto period = number("sandbox-cpu-period")) limits.cpu_period = *period;
  if (!limits.cpu_period) limits.cpu_quota.reset();
  return limits;
}

VmSize vm_size(const ShimOptions& options, const oci::Resources& resources) {
  VmSize size{options.memory_mib, options.vcpus};
  constexpr int64_t kMiB = 1 << 20;
  if (resources.memory_limit && *resources.memory_limit > 0)
    size.memory_mib += static_cast<unsigned>(
        std::min<int64_t>((*resources.memory_limit + kMiB - 1) / kMiB, 1 << 20));
  if (resources.cpu_quota && *resources.cpu_quota > 0 && resources.cpu_period) {
    uint64_t quota = static_cast<uint64_t>(*resources.cpu_quota);
    size.vcpus =
        std::max<uint64_t>(size.vcpus, (quota + *resources.cpu_period - 1) / *resources.cpu_period);
  }
  // "0-1,3": the highest CPU named must exist in the guest.
  unsigned number = 0;
  bool digits = false;
  for (char c : resources.cpuset_cpus + ",") {
    if (c >= '0' && c <= '9') {
      number = std::min(number * 10 + (c - '0'), kMaxVcpus);
      digits = true;
    } else {
      if (digits) size.vcpus = std::max(size.vcpus, number + 1);
      number = 0;
      digits = false;
    }
  }
  size.vcpus = std::min(size.vcpus, kMaxVcpus);
  return size;
}

Result<BootedVm> boot_vm(const ShimOptions& options, const oci::Spec& spec,
                         const oci::Resources& sizing, const Network& network,
                         const BindPlan& binds, int state_dir, TemplateUse use) {
  hypervisor::Accel requested = options.accel == "kvm"   ? hypervisor::Accel::Kvm
                                : options.accel == "tcg" ? hypervisor::Accel::Tcg
                                                         : hypervisor::Accel::Auto;
  auto choice = TRY(hypervisor::choose_accel(requested, options.state_root));

  BootedVm booted;
  booted.warning = choice.warning;
  booted.kvm_by_choice =
      requested == hypervisor::Accel::Auto && choice.accel == hypervisor::Accel::Kvm;
  auto [agent, agent_qemu] = TRY(sys::socketpair());
  auto [console, console_qemu] = TRY(sys::socketpair());
  auto qemu_log = TRY(sys::pipe());
  booted.agent = std::move(agent);
  booted.console = GuestOutput(std::move(console),
                               TRY(CappedFile::create(state_dir, "console.log", kConsoleLogCap)),
                               kGuestOutputRate);
  booted.qemu_log =
      GuestOutput(std::move(qemu_log.read),
                  TRY(CappedFile::create(state_dir, "qemu.log", kQemuLogCap)), kGuestOutputRate);

  hypervisor::VmConfig vm;
  vm.name = "vessel-" + options.id;
  vm.hypervisor_path = options.hypervisor_path;
  vm.kernel = options.kernel;
  vm.initrd = options.initrd;
  vm.machine_type = options.machine_type;
  vm.kernel_params = options.kernel_params;
  VmSize size = vm_size(options, sizing);
  vm.vcpus = size.vcpus;
  vm.memory_mib = size.memory_mib;
  vm.accel = choice.accel;
  if (vm.accel == hypervisor::Accel::Tcg) vm.tsc_khz = hypervisor::host_tsc_khz(options.state_root);
  // The root filesystem keeps the guest's ownership and modes, as with runc; volumes and bound
  // files too, but without setuid and setgid bits (binds.h, hypervisor::Ownership).
  vm.shares.push_back({"rootfs", spec.root_path, spec.root_readonly});
  vm.pod_entries = binds.volumes;
  vm.files = binds.files;
  // Every VM can be a pod's: Podman's infra container carries no sign that members will come.
  vm.pod_shares = {{channel::kPodRootsTag, hypervisor::Ownership::Host},
                   {channel::kPodVolumesTag, hypervisor::Ownership::Guarded}};
  for (const auto& tap : network.taps) vm.nics.push_back({tap.fd.get(), tap.mac});
  vm.agent_fd = agent_qemu.get();
  vm.console_fd = console_qemu.get();
  vm.log_fd = qemu_log.write.get();
  UniqueFd saved;
  if (auto shape = options.template_enabled ? template_shape(vm) : std::nullopt) {
    if (auto key = template_key(*shape); !key) {
      log::warning("no template: " + key.error().message);
    } else {
      booted.template_request = template_build_request(*shape, options.template_path, *key);
      auto opened = use == TemplateUse::Allowed ? open_template(options.template_path, *key)
                                                : Result<UniqueFd>(UniqueFd());
      if (opened && *opened) {
        saved = std::move(*opened);
        vm.incoming_fd = saved.get();
        booted.restored_from = template_file(options.template_path, *key);
        booted.resume = resume_message(vm);
      } else if (!opened && opened.error().code == EPERM) {
        log::warning(opened.error().message + ": not trusted, booting instead");
      } else if (!opened && opened.error().code != ENOENT) {
        log::warning("the template cannot be used (" + opened.error().message +
                     "): booting, and it will be made anew");
      }
    }
  }
  booted.vm = hypervisor::make_qemu();
  TRY(booted.vm->start(vm));
  return booted;
}

}  // namespace vessel::shim

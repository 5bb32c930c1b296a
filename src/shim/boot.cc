#include "shim/boot.h"

#include <fcntl.h>

#include "common/log.h"
#include "common/sys.h"
#include "hypervisor/accel.h"

namespace vessel::shim {

Result<BootedVm> boot_vm(const ShimOptions& options, const oci::Spec& spec, const Network& network,
                         const BindPlan& binds, int state_dir) {
  hypervisor::Accel requested = options.accel == "kvm"   ? hypervisor::Accel::Kvm
                                : options.accel == "tcg" ? hypervisor::Accel::Tcg
                                                         : hypervisor::Accel::Auto;
  auto choice = TRY(hypervisor::choose_accel(requested, options.state_root));
  if (!choice.warning.empty()) log::warning(choice.warning);

  BootedVm booted;
  booted.warning = choice.warning;
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
  vm.vcpus = options.vcpus;
  vm.memory_mib = options.memory_mib;
  vm.accel = choice.accel;
  if (vm.accel == hypervisor::Accel::Tcg) vm.tsc_khz = hypervisor::host_tsc_khz(options.state_root);
  // The root filesystem keeps the guest's ownership, as with runc; volumes are host directories
  // the guest must not leave setuid files or devices in (hypervisor::Ownership).
  vm.shares.push_back({"rootfs", spec.root_path, spec.root_readonly});
  vm.shares.insert(vm.shares.end(), binds.volumes.begin(), binds.volumes.end());
  vm.files = binds.files;
  for (const auto& tap : network.taps) vm.nics.push_back({tap.fd.get(), tap.mac});
  vm.agent_fd = agent_qemu.get();
  vm.console_fd = console_qemu.get();
  vm.log_fd = qemu_log.write.get();
  booted.vm = hypervisor::make_qemu();
  TRY(booted.vm->start(vm));
  return booted;
}

}  // namespace vessel::shim

// QEMU's command line (qemu.h's qemu_argv), one group of options at a time, in the order QEMU is
// given them.
#include <string>
#include <vector>

#include "hypervisor/qemu/qemu.h"

namespace vessel::hypervisor {

namespace {

// QEMU's option syntax separates keys with commas; a literal comma is written twice.
std::string escape_option(const std::string& value) {
  std::string out;
  for (char c : value) {
    out.push_back(c);
    if (c == ',') out.push_back(',');
  }
  return out;
}

bool is_microvm(const VmConfig& config) { return config.machine_type.starts_with("microvm"); }

// microvm has virtio-mmio devices found through ACPI; pc and q35 have PCI.
std::string virtio_device(const VmConfig& config, const std::string& kind) {
  return kind + (is_microvm(config) ? "-device" : "-pci");
}

// The machine, its accelerator, memory and vCPUs, and QEMU's own settings.
std::vector<std::string> machine_args(const VmConfig& config) {
  return {
      config.hypervisor_path,
      "-name",
      escape_option(config.name),
      "-machine",
      machine_argument(config.machine_type),
      "-accel",
      config.accel == Accel::Kvm ? "kvm" : "tcg,tb-size=" + std::to_string(config.tcg_cache_mib),
      "-m",
      std::to_string(config.memory_mib),
      "-smp",
      std::to_string(config.vcpus),
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      "-sandbox",
      "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
  };
}

// The serial console, and the agent's port on a virtio-serial bus.
std::vector<std::string> channel_args(const VmConfig& config) {
  return {
      "-chardev", "socket,id=console,fd=" + std::to_string(kQemuConsoleFd),
      "-serial",  "chardev:console",
      "-device",  virtio_device(config, "virtio-serial"),
      "-chardev", "socket,id=agent,fd=" + std::to_string(kQemuAgentFd),
      "-device",  "virtserialport,chardev=agent,name=vessel.0",
  };
}

// The entropy source and the balloon.
std::vector<std::string> device_args(const VmConfig& config) {
  return {
      "-device",
      virtio_device(config, "virtio-rng"),
      // Pages the guest frees go back to the host (QEMU discards what the guest reports); a
      // template's scrub (scrub_free_memory) gives pages back rather than OOM-kill the agent;
      // while a template is saved the guest hints its free memory, which the save leaves out.
      "-object",
      "iothread,id=balloon",
      "-device",
      virtio_device(config, "virtio-balloon") +
          ",free-page-reporting=on,deflate-on-oom=on,free-page-hint=on,iothread=balloon",
  };
}

std::string kernel_command_line(const VmConfig& config) {
  std::string append = "console=ttyS0 quiet panic=-1";
  if (config.accel == Accel::Tcg && config.tsc_khz > 0)
    // No kvmclock under TCG, and microvm has no PIT to calibrate against: give the rate.
    append += " tsc_early_khz=" + std::to_string(config.tsc_khz) + " tsc=reliable";
  if (!config.kernel_params.empty()) append += " " + config.kernel_params;
  return append;
}

// A restored VM starts from its saved state; any other boots the kernel and initrd.
std::vector<std::string> boot_args(const VmConfig& config) {
  if (config.incoming_fd >= 0) return {"-incoming", "fd:" + std::to_string(kQemuIncomingFd)};
  return {"-kernel", kJailKernel, "-initrd", kJailInitrd, "-append", kernel_command_line(config)};
}

std::vector<std::string> monitor_args(const VmConfig& config) {
  if (!config.monitor) return {};
  return {"-chardev", "socket,id=monitor,fd=" + std::to_string(kQemuMonitorFd), "-mon",
          "chardev=monitor,mode=control"};
}

// A 9p device for each share, each pod share, and the files share.
std::vector<std::string> share_args(const VmConfig& config) {
  std::vector<std::string> argv;
  int index = 0;
  for (const auto& share : config.shares) {
    std::string id = "fs" + std::to_string(index++);
    argv.insert(argv.end(),
                {"-fsdev",
                 "local,id=" + id + ",path=" + escape_option(jail_share_path(share)) +
                     ",security_model=passthrough" + (share.readonly ? ",readonly=on" : ""),
                 "-device",
                 virtio_device(config, "virtio-9p") + ",fsdev=" + id + ",mount_tag=" + share.tag});
  }
  // Members' directories are mounts below the share: their inode numbers are remapped so that
  // two file systems never show the guest one inode.
  for (const auto& share : config.pod_shares) {
    std::string id = "pod" + std::to_string(index++);
    argv.insert(argv.end(),
                {"-fsdev",
                 "local,id=" + id + ",path=" + jail_pod_share_path(share.tag) +
                     ",security_model=passthrough,multidevs=remap",
                 "-device",
                 virtio_device(config, "virtio-9p") + ",fsdev=" + id + ",mount_tag=" + share.tag});
  }
  // Always there, even empty: every VM then has the devices a template has (shim/template.h).
  argv.insert(
      argv.end(),
      {"-fsdev", "local,id=files,path=" + std::string(kJailFiles) + ",security_model=passthrough",
       "-device", virtio_device(config, "virtio-9p") + ",fsdev=files,mount_tag=" + kFilesShareTag});
  return argv;
}

std::vector<std::string> network_args(const VmConfig& config) {
  std::vector<std::string> argv;
  for (size_t i = 0; i < config.nics.size(); ++i) {
    std::string id = "net" + std::to_string(i);
    argv.insert(argv.end(),
                {"-netdev",
                 config.nics[i].tap_fd < 0
                     ? "hubport,id=" + id + ",hubid=" + std::to_string(i)
                     : "tap,id=" + id + ",fd=" + std::to_string(kQemuFirstTapFd + i) + ",vhost=off",
                 "-device",
                 virtio_device(config, "virtio-net") + ",netdev=" + id +
                     (config.nics[i].mac.empty() ? "" : ",mac=" + config.nics[i].mac)});
  }
  return argv;
}

}  // namespace

std::vector<std::string> qemu_argv(const VmConfig& config) {
  std::vector<std::string> argv = machine_args(config);
  auto add = [&argv](const std::vector<std::string>& group) {
    argv.insert(argv.end(), group.begin(), group.end());
  };
  add(channel_args(config));
  add(device_args(config));
  add(boot_args(config));
  add(monitor_args(config));
  if (config.accel == Accel::Kvm) add({"-cpu", "host"});
  add(share_args(config));
  add(network_args(config));
  return argv;
}

}  // namespace vessel::hypervisor

#include "hypervisor/qemu/qemu.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/process.h"
#include "common/sys.h"

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

class QemuHypervisor final : public Hypervisor {
 public:
  ~QemuHypervisor() override { stop(); }

  Result<void> start(const VmConfig& config) override {
    UniqueFd null_fd = TRY(sys::open("/dev/null", O_RDWR));
    std::string log_path = config.console_log + ".qemu";
    UniqueFd log_fd = TRY(sys::open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600));
    SpawnOptions options;
    options.argv = qemu_argv(config);
    options.fds = {
        {0, null_fd.get()}, {1, log_fd.get()}, {2, log_fd.get()}, {kQemuAgentFd, config.agent_fd}};
    for (size_t i = 0; i < config.nics.size(); ++i)
      options.fds.push_back({kQemuFirstTapFd + static_cast<int>(i), config.nics[i].tap_fd});
    options.die_with_parent = true;
    m_process = TRY(ChildProcess::spawn(options).map_error(context("starting QEMU")));
    return {};
  }

  pid_t pid() const override { return m_process.pid(); }

  Result<std::optional<int>> try_wait() override {
    if (m_process.pid() <= 0) return std::optional<int>{};
    return m_process.try_wait();
  }

  void stop() override {
    if (m_process.pid() <= 0) return;
    m_process.kill(SIGTERM);
    for (int i = 0; i < 500; ++i) {
      auto status = m_process.try_wait();
      if (!status || *status) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    m_process = ChildProcess();  // kills and reaps
  }

 private:
  ChildProcess m_process;
};

}  // namespace

std::vector<std::string> qemu_argv(const VmConfig& config) {
  std::string machine = config.machine_type;
  if (machine == "microvm") machine += ",pit=off,pic=off,isa-serial=on,rtc=on";
  std::string append = "console=ttyS0 quiet panic=-1";
  if (config.accel == Accel::Tcg && config.tsc_khz > 0)
    // No kvmclock under TCG, and microvm has no PIT to calibrate against: give the rate.
    append += " tsc_early_khz=" + std::to_string(config.tsc_khz) + " tsc=reliable";
  if (!config.kernel_params.empty()) append += " " + config.kernel_params;

  std::vector<std::string> argv = {
      config.hypervisor_path,
      "-name",
      escape_option(config.name),
      "-machine",
      machine,
      "-accel",
      config.accel == Accel::Kvm ? "kvm" : "tcg",
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
      "-kernel",
      config.kernel,
      "-initrd",
      config.initrd,
      "-append",
      append,
      "-serial",
      "file:" + config.console_log,
      "-device",
      virtio_device(config, "virtio-serial"),
      "-chardev",
      "socket,id=agent,fd=" + std::to_string(kQemuAgentFd),
      "-device",
      "virtserialport,chardev=agent,name=vessel.0",
      "-device",
      virtio_device(config, "virtio-rng"),
  };
  if (config.accel == Accel::Kvm) argv.insert(argv.end(), {"-cpu", "host"});
  int index = 0;
  for (const auto& share : config.shares) {
    std::string id = "fs" + std::to_string(index++);
    argv.insert(argv.end(),
                {"-fsdev",
                 "local,id=" + id + ",path=" + escape_option(share.host_path) +
                     ",security_model=passthrough" + (share.readonly ? ",readonly=on" : ""),
                 "-device",
                 virtio_device(config, "virtio-9p") + ",fsdev=" + id + ",mount_tag=" + share.tag});
  }
  for (size_t i = 0; i < config.nics.size(); ++i) {
    std::string id = "net" + std::to_string(i);
    argv.insert(
        argv.end(),
        {"-netdev", "tap,id=" + id + ",fd=" + std::to_string(kQemuFirstTapFd + i) + ",vhost=off",
         "-device",
         virtio_device(config, "virtio-net") + ",netdev=" + id +
             (config.nics[i].mac.empty() ? "" : ",mac=" + config.nics[i].mac)});
  }
  return argv;
}

std::unique_ptr<Hypervisor> make_qemu() { return std::make_unique<QemuHypervisor>(); }

}  // namespace vessel::hypervisor

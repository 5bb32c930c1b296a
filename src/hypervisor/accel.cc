#include "hypervisor/accel.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>

#include "common/sys.h"
#include "common/unique_fd.h"

namespace vessel::hypervisor {

namespace {

constexpr uint16_t kProbePort = 0x10;
constexpr uint8_t kProbeValue = 0x42;

void ignore_alarm(int) {}

struct Mapping {
  void* address = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (address != MAP_FAILED) ::munmap(address, size);
  }
};

std::string current_boot_id() {
  std::string boot_id = sys::read_file("/proc/sys/kernel/random/boot_id", 64).value_or("unknown");
  if (!boot_id.empty() && boot_id.back() == '\n') boot_id.pop_back();
  return boot_id;
}

}  // namespace

std::string for_this_boot(const std::string& path, const std::function<std::string()>& compute) {
  const std::string boot_id = current_boot_id();
  if (auto cached = sys::read_file(path, 4096); cached && cached->starts_with(boot_id + "\n"))
    return cached->substr(boot_id.size() + 1);
  std::string value = compute();
  (void)sys::write_file_atomic(path, boot_id + "\n" + value);
  return value;
}

void record_for_this_boot(const std::string& path, const std::string& value) {
  (void)sys::write_file_atomic(path, current_boot_id() + "\n" + value);
}

KvmHost KvmHost::from_environment() {
  KvmHost host;
  if (const char* device = std::getenv("VESSEL_KVM_DEVICE"); device && *device)
    host.device = device;
  if (const char* modules = std::getenv("VESSEL_SYS_MODULE"); modules && *modules)
    host.modules = modules;
  return host;
}

bool KvmHost::loaded(const std::string& module) const {
  return sys::exists(modules + "/" + module);
}

namespace {

// Why `host` has no KVM that could run vessel's guest, judged by its device and modules alone.
std::optional<std::string> module_problem(const KvmHost& host) {
  // PVM ("kvm_pvm") is a KVM for nested hosts without hardware virtualisation: a few real-mode
  // instructions run, but an ordinary guest kernel hangs, so the vendor module decides first.
  bool vendor = host.loaded("kvm_intel") || host.loaded("kvm_amd");
  bool pvm = host.loaded("kvm_pvm");
  const std::string& device = host.device;
  if (!sys::exists(device)) {
    if (vendor) return device + " does not exist, though KVM is loaded";
    if (pvm)
      return device +
             " does not exist, and the host's only KVM is kvm_pvm, which runs only PVM "
             "guest kernels";
    if (host.loaded("kvm"))
      return device + " does not exist, and neither kvm_intel nor kvm_amd is loaded";
    return device + " does not exist: this host's kernel has no KVM";
  }
  if (!vendor) {
    if (pvm) return "the host's KVM is kvm_pvm, which runs only PVM guest kernels, not vessel's";
    return "neither kvm_intel nor kvm_amd is loaded";
  }
  return std::nullopt;
}

// The throwaway VM the probe runs: one page of code and one vCPU. Members are released in the
// reverse of the order they are made.
struct TestVm {
  UniqueFd kvm;
  UniqueFd vm;
  Mapping memory;
  UniqueFd vcpu;
  Mapping run_state;
};

std::optional<std::string> create_test_vm(const std::string& device, TestVm& test) {
  test.kvm.reset(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!test.kvm) {
    if (errno == EACCES || errno == EPERM)
      return device +
             ": permission denied: add yourself to the kvm group: sudo usermod -aG kvm "
             "$USER";
    return device + ": " + std::strerror(errno);
  }
  if (::ioctl(test.kvm.get(), KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
    return device + " has an unknown API version";
  test.vm.reset(::ioctl(test.kvm.get(), KVM_CREATE_VM, 0));
  if (!test.vm) return std::string(device + " cannot create a VM: ") + std::strerror(errno);
  return std::nullopt;
}

std::optional<std::string> load_test_code(const std::string& device, TestVm& test) {
  Mapping& memory = test.memory;
  memory.size = 0x1000;
  memory.address =
      ::mmap(nullptr, memory.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory.address == MAP_FAILED) return "mmap failed";
  const uint8_t code[] = {0xb0, kProbeValue, 0xe6, static_cast<uint8_t>(kProbePort),
                          0xf4};  // mov al; out; hlt
  std::memcpy(memory.address, code, sizeof code);
  kvm_userspace_memory_region region{};
  region.guest_phys_addr = 0x1000;
  region.memory_size = memory.size;
  region.userspace_addr = reinterpret_cast<uint64_t>(memory.address);
  if (::ioctl(test.vm.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return std::string(device + " cannot map guest memory: ") + std::strerror(errno);
  return std::nullopt;
}

// The vCPU, its state mapped, starting in real mode at the code.
std::optional<std::string> create_test_vcpu(const std::string& device, TestVm& test) {
  test.vcpu.reset(::ioctl(test.vm.get(), KVM_CREATE_VCPU, 0));
  if (!test.vcpu) return std::string(device + " cannot create a vCPU: ") + std::strerror(errno);
  int run_size = ::ioctl(test.kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) return device + ": KVM_GET_VCPU_MMAP_SIZE failed";
  Mapping& run_mapping = test.run_state;
  run_mapping.size = run_size;
  run_mapping.address =
      ::mmap(nullptr, run_mapping.size, PROT_READ | PROT_WRITE, MAP_SHARED, test.vcpu.get(), 0);
  if (run_mapping.address == MAP_FAILED) return device + ": cannot map the vCPU state";

  kvm_sregs sregs{};
  if (::ioctl(test.vcpu.get(), KVM_GET_SREGS, &sregs) < 0) return device + ": KVM_GET_SREGS failed";
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (::ioctl(test.vcpu.get(), KVM_SET_SREGS, &sregs) < 0) return device + ": KVM_SET_SREGS failed";
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 0x2;
  if (::ioctl(test.vcpu.get(), KVM_SET_REGS, &regs) < 0) return device + ": KVM_SET_REGS failed";
  return std::nullopt;
}

// Runs the code until it halts: it must write the probe's value to the probe's port first.
std::optional<std::string> run_test_code(const std::string& device, TestVm& test) {
  auto* run = static_cast<kvm_run*>(test.run_state.address);
  // A KVM that cannot run ordinary guests may hang in KVM_RUN: bound it with a timer signal.
  struct sigaction action {
  }, previous{};
  action.sa_handler = ignore_alarm;
  ::sigaction(SIGALRM, &action, &previous);
  itimerval timer{}, no_timer{};
  timer.it_value.tv_usec = 500000;
  ::setitimer(ITIMER_REAL, &timer, nullptr);
  bool saw_out = false;
  std::optional<std::string> reason;
  for (int step = 0; step < 4 && !reason; ++step) {
    if (::ioctl(test.vcpu.get(), KVM_RUN, 0) < 0) {
      reason = errno == EINTR
                   ? "a test guest on " + device + " did not finish within 0.5 s"
                   : std::string("a test guest on " + device + " failed: ") + std::strerror(errno);
      break;
    }
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == kProbePort &&
        reinterpret_cast<uint8_t*>(run)[run->io.data_offset] == kProbeValue) {
      saw_out = true;
    } else if (run->exit_reason == KVM_EXIT_HLT) {
      if (!saw_out) reason = "a test guest on " + device + " halted without running its code";
      break;
    } else {
      reason = "a test guest on " + device + " stopped unexpectedly (exit reason " +
               std::to_string(run->exit_reason) + ")";
    }
  }
  ::setitimer(ITIMER_REAL, &no_timer, nullptr);
  ::sigaction(SIGALRM, &previous, nullptr);
  if (!reason && !saw_out) reason = "a test guest on " + device + " did not run";
  return reason;
}

}  // namespace

std::optional<std::string> kvm_unusable_reason(const KvmHost& host) {
  if (auto problem = module_problem(host)) return problem;
  TestVm test;
  if (auto problem = create_test_vm(host.device, test)) return problem;
  if (auto problem = load_test_code(host.device, test)) return problem;
  if (auto problem = create_test_vcpu(host.device, test)) return problem;
  return run_test_code(host.device, test);
}

std::string kvm_verdict_path(const std::string& cache_dir) { return cache_dir + "/kvm-probe"; }

std::string tcg_warning(const std::string& reason) {
  return "KVM cannot be used (" + reason +
         "): running the VM under TCG emulation, which is much slower";
}

Result<AccelChoice> choose_accel(Accel requested, const std::string& cache_dir) {
  if (requested == Accel::Tcg) return AccelChoice{Accel::Tcg, ""};
  std::string verdict = for_this_boot(kvm_verdict_path(cache_dir), [] {
    return kvm_unusable_reason(KvmHost::from_environment()).value_or("usable");
  });
  if (verdict == "usable") return AccelChoice{Accel::Kvm, ""};
  if (requested == Accel::Kvm)
    return fail(ENODEV, "KVM was requested (accel = \"kvm\") but " + verdict);
  return AccelChoice{Accel::Tcg, tcg_warning(verdict)};
}

uint64_t host_tsc_khz(const std::string& cache_dir) {
  std::string khz =
      for_this_boot(cache_dir + "/tsc-khz", [] { return std::to_string(measure_tsc_khz()); });
  return std::strtoull(khz.c_str(), nullptr, 10);
}

uint64_t measure_tsc_khz() {
  timespec start_time{}, end_time{};
  clock_gettime(CLOCK_MONOTONIC_RAW, &start_time);
  uint64_t start_tsc = __rdtsc();
  timespec pause{0, 20 * 1000 * 1000};
  while (nanosleep(&pause, &pause) < 0 && errno == EINTR) {
  }
  clock_gettime(CLOCK_MONOTONIC_RAW, &end_time);
  uint64_t end_tsc = __rdtsc();
  double seconds =
      (end_time.tv_sec - start_time.tv_sec) + (end_time.tv_nsec - start_time.tv_nsec) / 1e9;
  return static_cast<uint64_t>((end_tsc - start_tsc) / seconds / 1000.0);
}

}  // namespace vessel::hypervisor

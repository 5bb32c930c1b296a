#include "hypervisor/qemu/qemu.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include "common/log.h"
#include "common/sys.h"
#include "host/process.h"
#include "hypervisor/qemu/jail.h"
#include "hypervisor/qemu/qmp.h"
#include "hypervisor/qemu/setuid_guard.h"

namespace vessel::hypervisor {

namespace {

// A template's save (QemuHypervisor::save): the rate while the guest hints its free memory, the
// size of a hinted block (Linux hints free blocks of its largest order, 4 MiB on x86), and how
// long hints are waited for.
constexpr int64_t kHintingBandwidth = int64_t{1} << 20;
constexpr int64_t kHintedBlock = int64_t{4} << 20;
constexpr auto kHintingAtLeast = std::chrono::milliseconds(300);
constexpr auto kHintsSettled = std::chrono::milliseconds(200);
constexpr auto kHintingAtMost = std::chrono::seconds(3);

JailPlan jail_plan(const VmConfig& config);

class QemuHypervisor final : public Hypervisor {
 public:
  ~QemuHypervisor() override { stop(); }

  Result<void> start(const VmConfig& config) override {
    if (config.nics.size() > kQemuMaxTaps)
      return fail("a VM takes at most " + std::to_string(kQemuMaxTaps) + " network interfaces");
    UniqueFd null_fd = TRY(sys::open("/dev/null", O_RDWR));
    SpawnOptions options;
    options.argv = qemu_argv(config);
    std::string command;
    for (const auto& arg : options.argv) command += (command.empty() ? "" : " ") + arg;
    log::debug("QEMU: " + command);
    options.fds = {{0, null_fd.get()},
                   {1, config.log_fd},
                   {2, config.log_fd},
                   {kQemuAgentFd, config.agent_fd},
                   {kQemuConsoleFd, config.console_fd},
                   {kQemuIncomingFd, config.incoming_fd}};
    UniqueFd monitor_qemu;
    if (config.monitor) {
      auto [ours, theirs] = TRY(sys::socketpair());
      m_monitor = std::move(ours);
      monitor_qemu = std::move(theirs);
      options.fds.push_back({kQemuMonitorFd, monitor_qemu.get()});
    }
    for (size_t i = 0; i < config.nics.size(); ++i)
      options.fds.push_back({kQemuFirstTapFd + static_cast<int>(i), config.nics[i].tap_fd});
    JailPlan jail = jail_plan(config);
    int next_fd = kQemuFirstShareFd;
    for (const auto& share : config.shares) options.fds.push_back({next_fd++, share.fd});
    for (const auto& file : config.files) options.fds.push_back({next_fd++, file.fd});
    for (const auto& entry : config.pod_entries) options.fds.push_back({next_fd++, entry.fd});
    std::erase_if(options.fds, [](const auto& pair) { return pair.second < 0; });
    options.die_with_parent = true;
    options.env = std::vector<std::string>{};  // nothing of the caller's environment
    options.namespaces = jail_namespaces();
    options.after_clone = write_identity_maps;
    // The setuid guard's listener comes back on this socket from QEMU's child before it execs.
    auto [guard, guard_qemu] = TRY(sys::socketpair());
    options.fds.push_back({kQemuGuardFd, guard_qemu.get()});
    options.before_exec = [&jail]() -> Result<void> {
      TRY(enter_jail(jail));
      TRY(install_setuid_guard(kQemuGuardFd));
      ::close(kQemuGuardFd);
      return Result<void>();
    };
    m_process = TRY(ChildProcess::spawn(options).map_error(context("starting QEMU")));
    guard_qemu.reset();
    UniqueFd listener = TRY(sys::receive_fd(guard.get()).map_error(context("QEMU's guard")));
    m_guard = SetuidGuard(std::move(listener), TRY(sys::open("/proc", O_PATH | O_DIRECTORY)),
                          setuid_roots(config));
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

  // Migration to a descriptor: QEMU writes the stream and stops the VM when it is complete. It
  // starts at a crawl, so that the guest's balloon has time to hint its free memory (QEMU then
  // leaves those pages out of the stream, and a restore never touches them: loading a zero
  // page costs a fault of its own), then runs at full speed once the hints have stopped coming.
  Result<void> save(int fd) override {
    Qmp& qmp = *TRY(monitor());
    auto bandwidth = [&](int64_t bytes_per_second) {
      return qmp.execute("migrate-set-parameters", {{"max-bandwidth", bytes_per_second}});
    };
    TRY(bandwidth(kHintingBandwidth));
    TRY(qmp.execute("getfd", {{"fdname", "state"}}, fd));
    TRY(qmp.execute("migrate", {{"uri", "fd:state"}}));
    auto started = std::chrono::steady_clock::now();
    auto last_hint = started;
    int64_t remaining = -1;
    bool hinting = true;
    for (int i = 0; i < 6000; ++i) {
      auto status = TRY(qmp.execute("query-migrate"));
      std::string state = status.is_object() ? status.value("status", "") : "";
      if (state == "completed") return {};
      if (state == "failed" || state == "cancelled")
        return fail(EIO, "QEMU could not save the VM: " +
                             (status.is_object() ? status.value("error-desc", state) : state));
      if (hinting) {
        // A hint takes a whole free block out of what remains; sending at a crawl takes little.
        auto now = std::chrono::steady_clock::now();
        int64_t left = status.is_object() && status.contains("ram") && status["ram"].is_object()
                           ? status["ram"].value("remaining", int64_t{-1})
                           : -1;
        if (remaining < 0 || left < 0 || remaining - left >= kHintedBlock) last_hint = now;
        remaining = left;
        if ((now - started >= kHintingAtLeast && now - last_hint >= kHintsSettled) ||
            now - started >= kHintingAtMost) {
          TRY(bandwidth(int64_t{1} << 40));  // QEMU's default cap would take seconds
          hinting = false;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(hinting ? 5 : 10));
    }
    return fail(ETIMEDOUT, "QEMU did not save the VM within 60 s");
  }

  Result<void> scrub_free_memory() override { return scrub_free_memory(*TRY(monitor())); }
  int guard_fd() const override { return m_guard.fd(); }
  void serve_guard() override { m_guard.serve(); }

 private:
  // QMP's greeting comes once, on the monitor's socket QEMU was started with: one session.
  Result<Qmp*> monitor() {
    if (m_qmp) return &*m_qmp;
    if (!m_monitor) return fail("the VM was started without a monitor");
    UniqueFd monitor(::fcntl(m_monitor.get(), F_DUPFD_CLOEXEC, 0));
    if (!monitor) return fail_errno("dup");
    m_qmp = TRY(Qmp::connect(std::move(monitor), std::chrono::seconds(10)));
    return &*m_qmp;
  }

  // The guest's free pages still hold what its boot left in them (the initrd's image, init code,
  // freed slabs), and a save writes every page that is not zero, which each restore then loads.
  // The balloon takes all the guest can spare (QEMU discards each page it is given: its memory
  // is zero again, and the host's is not touched to make it so) and gives it all back; the pages
  // come back free and zero, saved as a flag. A balloon that does not come back whole fails
  // the save: the guest would have less memory than its shape says.
  static Result<void> scrub_free_memory(Qmp& qmp) {
    auto actual = [&]() -> Result<uint64_t> {
      nlohmann::json reply = TRY(qmp.execute("query-balloon"));
      if (!reply.is_object() || !reply["actual"].is_number_unsigned())
        return fail(EPROTO, "QEMU's query-balloon answered without the balloon's size");
      return reply["actual"].get<uint64_t>();
    };
    auto full = actual();
    if (!full) return {};  // no balloon: saved as it is
    const uint64_t size = *full;
    using Clock = std::chrono::steady_clock;
    // Inflating ends where the guest gives no more: a second without change once it has begun
    // (it may take a while to begin), or the floor. The idle guest uses more than the floor:
    // deflate-on-oom has it take pages back instead of killing its agent.
    constexpr uint64_t kFloor = uint64_t{16} << 20;
    TRY(qmp.execute("balloon", {{"value", kFloor}}));
    uint64_t last = size;
    for (auto start = Clock::now(), changed = start;
         Clock::now() < start + std::chrono::seconds(20);
         std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
      uint64_t now = TRY(actual());
      if (now <= kFloor) break;
      if (now != last) last = now, changed = Clock::now();
      if (Clock::now() - changed >
          (last == size ? std::chrono::seconds(5) : std::chrono::seconds(1)))
        break;
    }
    TRY(qmp.execute("balloon", {{"value", size}}));
    bool back = false;
    for (auto start = Clock::now(); !back && Clock::now() < start + std::chrono::seconds(20);
         std::this_thread::sleep_for(std::chrono::milliseconds(20)))
      back = TRY(actual()) == size;
    if (!back) return fail(EIO, "the template's balloon did not give its memory back");
    return {};
  }

  ChildProcess m_process;
  SetuidGuard m_guard;
  UniqueFd m_monitor;
  std::optional<Qmp> m_qmp;
};

// What QEMU's jail holds: the guest image, each share, its own binary if /usr lacks it, and the
// device nodes it opens.
JailPlan jail_plan(const VmConfig& config) {
  JailPlan plan;
  // A restored VM's kernel is in its saved memory already.
  if (config.incoming_fd < 0) {
    plan.binds.push_back({config.kernel, kJailKernel, false, true});
    plan.binds.push_back({config.initrd, kJailInitrd, false, true});
  }
  if (!config.hypervisor_path.starts_with("/usr/"))
    plan.binds.push_back({config.hypervisor_path, config.hypervisor_path, false, true});
  // Descriptors are numbered as start() hands them over: shares, then files.
  int fd = kQemuFirstShareFd;
  for (const auto& share : config.shares) {
    plan.binds.push_back(
        {share.host_path, jail_share_path(share), true, share.readonly, share.fd >= 0 ? fd : -1});
    ++fd;
  }
  for (size_t i = 0; i < config.files.size(); ++i, ++fd) {
    const SharedFile& file = config.files[i];
    plan.binds.push_back({file.host_path, std::string(kJailFiles) + "/" + std::to_string(i), false,
                          file.readonly, file.fd >= 0 ? fd : -1});
  }
  for (const auto& entry : config.pod_entries) {
    plan.scratch_binds.push_back({entry.host_path,
                                  jail_pod_share_path(entry.share) + "/" + entry.name, true,
                                  entry.readonly, entry.fd >= 0 ? fd : -1});
    ++fd;
  }
  for (const auto& share : config.pod_shares)
    plan.scratch.push_back(jail_pod_share_path(share.tag));
  if (config.files.empty()) plan.empty_dirs.push_back(kJailFiles);
  plan.devices = {"/dev/null", "/dev/urandom"};
  if (config.accel == Accel::Kvm) plan.devices.push_back("/dev/kvm");
  return plan;
}

}  // namespace

std::string jail_share_path(const Share& share) { return "/vessel/share/" + share.tag; }

std::vector<std::string> setuid_roots(const VmConfig& config) {
  std::vector<std::string> roots;
  for (const auto& share : config.shares)
    if (share.ownership == Ownership::Host) roots.push_back(jail_share_path(share));
  for (const auto& share : config.pod_shares)
    if (share.ownership == Ownership::Host) roots.push_back(jail_pod_share_path(share.tag));
  return roots;
}

std::unique_ptr<Hypervisor> make_qemu() { return std::make_unique<QemuHypervisor>(); }

}  // namespace vessel::hypervisor

#include "shim/guest.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sys.h"
#include "hypervisor/accel.h"
#include "shim/template.h"

namespace vessel::shim {

namespace {

// A restore loads memory: one that takes this long has failed, and the VM boots instead.
constexpr auto kRestoreTimeout = std::chrono::seconds(15);
constexpr auto kBootTimeout = std::chrono::seconds(120);

// QEMU itself stopped, saying why in words about KVM (not a guest that panicked).
bool kvm_start_failed(const Error& error) {
  const std::string& text = error.message;
  return error.code == EIO && text.starts_with("the VM stopped while starting (QEMU: ") &&
         (text.find("KVM") != std::string::npos || text.find("kvm") != std::string::npos);
}

}  // namespace

Result<channel::from_agent::Hello> Guest::start(const oci::Spec& spec, const oci::Resources& sizing,
                                                const Network& network, const BindPlan& binds,
                                                std::string& warning) {
  BootedVm booted =
      TRY(boot_vm(m_options, spec, sizing, network, binds, m_state_dir, TemplateUse::Allowed));
  warning = booted.warning;
  if (!warning.empty()) log::warning(warning);
  const bool kvm_by_choice = booted.kvm_by_choice;
  m_template_request = booted.template_request;
  const std::string restored_from = booted.restored_from;
  const channel::from_host::Resume resume = booted.resume;
  adopt(std::move(booted));
  if (!restored_from.empty()) {
    log::debug("QEMU started from the template " + restored_from);
    send(resume);
    auto hello = wait_for<channel::from_agent::Hello>(kRestoreTimeout);
    if (hello) {
      m_template_request = nullptr;  // it is there and it works
      send(clock_message());
      return hello;
    }
    log::warning("the template " + restored_from + " could not be restored (" +
                 hello.error().message + "): booting instead");
    ::unlink(restored_from.c_str());
    m_vm.reset();
    adopt(TRY(boot_vm(m_options, spec, sizing, network, binds, m_state_dir, TemplateUse::Never)));
  }
  log::debug("QEMU started");
  auto hello = wait_for<channel::from_agent::Hello>(kBootTimeout);
  if (hello || !kvm_by_choice || !kvm_start_failed(hello.error())) return hello;
  return boot_under_tcg(spec, sizing, network, binds, hello.error(), warning);
}

// The probe said KVM could run a guest and QEMU found otherwise: TCG for this VM, and for every
// later one until the host reboots (hypervisor/accel.h), with the same one line.
Result<channel::from_agent::Hello> Guest::boot_under_tcg(
    const oci::Spec& spec, const oci::Resources& sizing, const Network& network,
    const BindPlan& binds, const Error& kvm_failure, std::string& warning) {
  std::string reason = "QEMU could not start the VM under KVM: " + kvm_failure.message;
  hypervisor::record_for_this_boot(hypervisor::kvm_verdict_path(m_options.state_root), reason);
  warning = hypervisor::tcg_warning(reason);
  log::warning(warning);
  m_vm.reset();
  ShimOptions under_tcg = m_options;
  under_tcg.accel = "tcg";
  adopt(TRY(boot_vm(under_tcg, spec, sizing, network, binds, m_state_dir, TemplateUse::Never)));
  return wait_for<channel::from_agent::Hello>(kBootTimeout);
}

void Guest::adopt(BootedVm booted) {
  m_frames.clear();
  m_vm = std::move(booted.vm);
  m_console = std::move(booted.console);
  m_qemu_log = std::move(booted.qemu_log);
  m_channel = std::make_unique<channel::Channel>(std::move(booted.agent));
}

Result<bool> Guest::poll(std::vector<pollfd>& fds, std::chrono::milliseconds timeout,
                         bool read_channel) {
  const size_t first = fds.size();
  fds.push_back(
      {m_channel->fd(),
       static_cast<short>((read_channel ? POLLIN : 0) | (m_channel->wants_write() ? POLLOUT : 0)),
       0});
  if (m_vm->guard_fd() >= 0) fds.push_back({m_vm->guard_fd(), POLLIN, 0});
  for (GuestOutput* output : {&m_console, &m_qemu_log}) {
    if (output->wants_read())
      fds.push_back({output->fd(), POLLIN, 0});
    else if (output->fd() >= 0)
      timeout = std::min(timeout, output->ready_in());
  }
  if (::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) < 0) {
    fds.resize(first);
    if (errno == EINTR) return true;
    return fail_errno("poll");
  }
  bool open = true;
  for (size_t i = first; i < fds.size(); ++i) {
    if (!fds[i].revents) continue;
    if (i == first) {
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) open = TRY(m_channel->receive(m_frames));
    } else if (fds[i].fd == m_vm->guard_fd()) {
      m_vm->serve_guard();
    } else {
      for (GuestOutput* output : {&m_console, &m_qemu_log})
        if (output->fd() == fds[i].fd) output->on_readable();
    }
  }
  fds.resize(first);
  return open;
}

Result<channel::AgentMessage> Guest::next_message(Clock::time_point deadline,
                                                  std::chrono::seconds timeout) {
  for (;;) {
    while (!m_frames.empty()) {
      channel::Frame frame = std::move(m_frames.front());
      m_frames.erase(m_frames.begin());
      if (frame.type != channel::FrameType::Control) continue;
      auto message = TRY(channel::parse_agent_message(frame));
      log::debug("agent: " + channel::type_of(message));
      return message;
    }
    TRY(m_channel->flush());
    auto now = Clock::now();
    if (now >= deadline)
      return fail(ETIMEDOUT,
                  "the VM did not answer within " + std::to_string(timeout.count()) + " s");
    auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                         std::chrono::milliseconds(100));
    std::vector<pollfd> none;
    bool open = TRY(poll(none, wait, true));
    if (!open && m_frames.empty()) return stopped_error(std::nullopt);
    if (auto status = m_vm->try_wait(); status && *status) return stopped_error(*status);
  }
}

tl::unexpected<Error> Guest::stopped_error(std::optional<int> wait_status) {
  m_qemu_log.drain();
  m_console.drain();
  std::string message = describe_early_stop(m_console, m_qemu_log, wait_status);
  if (m_options.debug) message += "; " + keep_console_log();
  return fail(EIO, message);
}

// With enable_debug, the console log outlives the failed container (whose state directory
// goes): copied beside the state directories as ID.console.log.
std::string Guest::keep_console_log() {
  std::string kept = m_options.state_root + "/" + m_options.id + ".console.log";
  UniqueFd fd(::openat(m_state_dir, "console.log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  auto text = fd ? sys::read_to_end(fd.get(), 2 << 20) : Result<std::string>(std::string());
  if (!fd || !text || !sys::write_file_atomic(kept, *text, 0600))
    return "the console log could not be kept";
  return "the console log is kept in " + kept;
}

void Guest::stop() {
  if (m_channel && m_vm) {
    send(channel::from_host::Shutdown{});
    (void)m_channel->flush();
  }
  m_vm.reset();  // stops QEMU
}

}  // namespace vessel::shim

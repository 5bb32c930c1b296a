#include "shim/sandbox.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/base64.h"
#include "common/channel/messages.h"
#include "common/channel/stream.h"
#include "common/confine.h"
#include "common/host_cgroup.h"
#include "common/log.h"
#include "common/mount_points.h"
#include "common/oci_spec.h"
#include "common/oom_report.h"
#include "common/sys.h"
#include "common/terminal.h"
#include "hypervisor/accel.h"
#include "shim/binds.h"
#include "shim/boot.h"
#include "shim/container_view.h"
#include "shim/control.h"
#include "shim/exec_sessions.h"
#include "shim/network.h"
#include "shim/port_forward.h"
#include "shim/seccomp.h"
#include "shim/stdio_relay.h"
#include "shim/template.h"

namespace vessel::shim {

using channel::AgentMessage;
using channel::Channel;
using channel::FrameType;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Every wait on the guest ends.
constexpr auto kBootTimeout = std::chrono::seconds(120);
constexpr auto kStartTimeout = std::chrono::seconds(30);
// A restore loads memory: one that takes this long has failed, and the VM boots instead.
constexpr auto kRestoreTimeout = std::chrono::seconds(15);
constexpr auto kQueryTimeout = std::chrono::seconds(10);  // update, ps
// After SIGKILL the agent has this long to report the exit before the VM is stopped outright.
constexpr auto kKillGrace = std::chrono::seconds(2);

class Sandbox {
 public:
  Sandbox(const ShimOptions& options, UniqueFd state_dir, UniqueFd signal_fd)
      : m_options(options), m_state_dir(std::move(state_dir)), m_signal_fd(std::move(signal_fd)) {}

  // Everything up to "created": on failure the destructor stops the VM.
  Result<std::string> prepare() {
    TRY(make_mounts_private());
    std::string config_text = TRY(sys::read_file(m_options.bundle + "/config.json", 4 << 20));
    json config = json::parse(config_text, nullptr, false);
    oci::Spec spec = TRY(oci::parse_spec_text(config_text, "config.json"));
    if (spec.root_path[0] != '/') spec.root_path = m_options.bundle + "/" + spec.root_path;
    m_terminal = spec.process.terminal;
    // Kept for the `oom` file Podman looks for there, after the shim has left the host's mounts.
    m_bundle = TRY(sys::open(m_options.bundle, O_PATH | O_DIRECTORY));

    std::string seccomp =
        TRY(compile_seccomp(config.contains("linux") && config["linux"].is_object()
                                ? config["linux"].value("seccomp", json())
                                : json()));
    log::debug("setting up the network");
    bool hooked = false;
    if (config.contains("hooks") && config["hooks"].is_object())
      for (const char* phase : {"prestart", "createRuntime"})
        hooked |= config["hooks"].contains(phase) && config["hooks"][phase].is_array() &&
                  !config["hooks"][phase].empty();
    Network network = TRY(setup_network(spec, hooked));
    if (!network.standby_mac.empty())
      TRY(sys::write_file_atomic_at(m_state_dir.get(), "standby-nic", network.standby_mac, 0644));
    log::debug("network ready");
    // A pod of containerd's CRI: its PortForward dials the guest's ports here (port_forward.h).
    // Only then: a guest's ports are never listened on unasked.
    m_forward_ports = is_cri_sandbox(config);
    if (m_forward_ports)
      if (auto allowed = allow_low_ports(); !allowed)
        log::warning("the guest's ports below 1024 cannot be forwarded: " +
                     allowed.error().message);
    // QEMU, started below, inherits the cgroup Podman reads the container's cost from.
    const auto cgroup_dirs = host_cgroup::directories(spec.cgroups_path);
    for (const auto& dir : host_cgroup::join(cgroup_dirs))
      log::debug("not in the host cgroup " + dir);
    // The container's pid is the shim: a cgroup namespace the spec asks for starts here (QEMU
    // inherits it), rooted at the cgroup just joined.
    if (spec.find_namespace("cgroup") && ::unshare(CLONE_NEWCGROUP) < 0)
      return fail_errno("creating a cgroup namespace");
    TRY(mount_overlays(spec));
    BindPlan binds = TRY(plan_binds(spec));
    if (spec.root_readonly) TRY(make_mount_points(spec));
    TRY(mount_own_proc());

    // A pod's VM is sized for the pod where the engine limits the pod as a whole (its cgroup
    // holds the first container's: `podman pod create --memory --cpus`), and members' limits
    // apply inside it (docs/pods.md).
    // containerd's CRI names the pod's total on its sandbox instead (docs/kubernetes.md).
    oci::Resources sizing = spec.resources;
    oci::Resources pod = cri_pod_limits(config);
    if (!pod.memory_limit && !pod.cpu_quota) pod = host_cgroup::enclosing_limits(cgroup_dirs);
    if (!sizing.memory_limit || *sizing.memory_limit <= 0) sizing.memory_limit = pod.memory_limit;
    if (!sizing.cpu_quota || *sizing.cpu_quota <= 0)
      sizing.cpu_quota = pod.cpu_quota, sizing.cpu_period = pod.cpu_period;
    std::string warning;
    AgentMessage hello = TRY(start_vm(spec, sizing, network, binds, warning));
    log::debug("the agent said hello");
    if (hello.version != channel::build_version())
      return fail(EPROTO,
                  channel::version_mismatch_message(channel::build_version(), hello.version));

    channel::send_message(*m_channel, {{"type", "create"},
                                       {"spec", config},
                                       {"network", network.description},
                                       {"binds", binds.binds},
                                       {"seccomp", base64_encode(seccomp)},
                                       {"watch_ports", m_forward_ports}});
    TRY(wait_for_message("created", kBootTimeout));
    log::debug("the container is created");
    // The container's CPU limits hold the VM from here on: its boot is vessel's overhead, and
    // a guest kernel booting at a tenth of a CPU under emulation would not be up in minutes.
    for (const auto& limit : host_cgroup::apply_cpu_limits(cgroup_dirs, spec.resources))
      log::warning("cannot set the host cgroup's " + limit);
    TRY(setup_stdio());
    m_control = TRY(ControlSocket::listen(m_options.state_dir + "/shim.sock"));
    TRY(enter_container_view(spec).map_error(context("showing the container to Podman")));
    // From here on the shim only relays what the guest sends: it needs no privilege at all.
    TRY(drop_capabilities({}).map_error(context("dropping the shim's privileges")));
    TRY(refuse_privileged_syscalls().map_error(context("dropping the shim's privileges")));
    return warning;
  }

  // How to make the template this container's VM could have been restored from, when it was not.
  const json& template_request() const { return m_template_request; }

  int run() {
    while (!m_exit_code) {
      if (auto polled = poll_once(); !polled) {
        log::error(polled.error().message);
        return finish(128 + SIGKILL);
      }
      if (m_exit_message && all_output_written()) return finish(*m_exit_message);
      if (m_kill_deadline && Clock::now() >= *m_kill_deadline) {
        log::warning("the guest did not stop within 2 s of SIGKILL: stopping the VM");
        return finish(128 + SIGKILL);
      }
      if (m_query_deadline && Clock::now() >= *m_query_deadline)
        reply_pending_query({{"ok", false},
                             {"error", "the agent did not answer the " + m_query + " within " +
                                           std::to_string(kQueryTimeout.count()) + " s"}});
      if (m_start_deadline && Clock::now() >= *m_start_deadline) {
        std::string error = "the agent did not start the container within " +
                            std::to_string(kStartTimeout.count()) + " s";
        log::error(error + ": stopping the VM");
        reply_pending_start({{"ok", false}, {"error", error}});
        return finish(128 + SIGKILL);
      }
    }
    return finish(*m_exit_code);
  }

  ~Sandbox() { ::unlinkat(m_state_dir.get(), "shim.sock", 0); }

 private:
  int finish(int code) {
    log::debug("output written, stopping the VM");
    if (m_channel) {
      channel::send_message(*m_channel, {{"type", "shutdown"}});
      (void)m_channel->flush();
    }
    m_vm.reset();  // stops QEMU
    log::debug("the VM stopped");
    return code;
  }

  bool all_output_written() const { return m_stdio.written(0); }

  // The VM restored from its template when there is one that works (docs/templates.md), else
  // booted; returns the agent's hello. `warning`: the TCG fallback, if it happened.
  Result<AgentMessage> start_vm(const oci::Spec& spec, const oci::Resources& sizing,
                                const Network& network, const BindPlan& binds,
                                std::string& warning) {
    BootedVm booted = TRY(
        boot_vm(m_options, spec, sizing, network, binds, m_state_dir.get(), TemplateUse::Allowed));
    warning = booted.warning;
    if (!warning.empty()) log::warning(warning);
    const bool kvm_by_choice = booted.kvm_by_choice;
    m_template_request = booted.template_request;
    const std::string restored_from = booted.restored_from;
    const json resume = booted.resume;
    adopt(std::move(booted));
    if (!restored_from.empty()) {
      log::debug("QEMU started from the template " + restored_from);
      channel::send_message(*m_channel, resume);
      auto hello = wait_for_message("hello", kRestoreTimeout);
      if (hello) {
        m_template_request = nullptr;  // it is there and it works
        channel::send_message(*m_channel, clock_message());
        return hello;
      }
      log::warning("the template " + restored_from + " could not be restored (" +
                   hello.error().message + "): booting instead");
      ::unlink(restored_from.c_str());
      m_vm.reset();
      adopt(TRY(
          boot_vm(m_options, spec, sizing, network, binds, m_state_dir.get(), TemplateUse::Never)));
    }
    log::debug("QEMU started");
    auto hello = wait_for_message("hello", kBootTimeout);
    if (hello || !kvm_by_choice || !kvm_start_failed(hello.error())) return hello;
    return boot_under_tcg(spec, sizing, network, binds, hello.error(), warning);
  }

  // The probe said KVM could run a guest and QEMU found otherwise: TCG for this VM, and for
  // every later one until the host reboots (hypervisor/accel.h), with the same one line.
  Result<AgentMessage> boot_under_tcg(const oci::Spec& spec, const oci::Resources& sizing,
                                      const Network& network, const BindPlan& binds,
                                      const Error& kvm_failure, std::string& warning) {
    std::string reason = "QEMU could not start the VM under KVM: " + kvm_failure.message;
    hypervisor::record_for_this_boot(hypervisor::kvm_verdict_path(m_options.state_root), reason);
    warning = hypervisor::tcg_warning(reason);
    log::warning(warning);
    m_vm.reset();
    ShimOptions under_tcg = m_options;
    under_tcg.accel = "tcg";
    adopt(TRY(
        boot_vm(under_tcg, spec, sizing, network, binds, m_state_dir.get(), TemplateUse::Never)));
    return wait_for_message("hello", kBootTimeout);
  }

  // QEMU itself stopped, saying why in words about KVM (not a guest that panicked).
  static bool kvm_start_failed(const Error& error) {
    const std::string& text = error.message;
    return error.code == EIO && text.starts_with("the VM stopped while starting (QEMU: ") &&
           (text.find("KVM") != std::string::npos || text.find("kvm") != std::string::npos);
  }

  void adopt(BootedVm booted) {
    m_execs.reset();
    m_forwards.reset();
    m_pending_frames.clear();
    m_pending_next = 0;
    m_vm = std::move(booted.vm);
    m_console = std::move(booted.console);
    m_qemu_log = std::move(booted.qemu_log);
    m_channel = std::make_unique<Channel>(std::move(booted.agent));
    m_execs.emplace(m_stdio, *m_channel);
    m_forwards.emplace(*m_channel);
  }

  // Guest output descriptors to poll now, and how long poll may sleep for their sake; and the
  // VMM's questions (hypervisor::Hypervisor::guard_fd), which hold one of its threads until
  // answered.
  void add_guest_output(std::vector<pollfd>& fds, std::chrono::milliseconds& timeout) {
    if (m_vm && m_vm->guard_fd() >= 0) fds.push_back({m_vm->guard_fd(), POLLIN, 0});
    for (GuestOutput* output : {&m_console, &m_qemu_log}) {
      if (output->wants_read())
        fds.push_back({output->fd(), POLLIN, 0});
      else if (output->fd() >= 0)
        timeout = std::min(timeout, output->ready_in());
    }
  }

  bool on_guest_output(int fd) {
    if (m_vm && fd == m_vm->guard_fd()) return m_vm->serve_guard(), true;
    for (GuestOutput* output : {&m_console, &m_qemu_log})
      if (output->fd() == fd) return output->on_readable(), true;
    return false;
  }

  // Waits for one control message of `type` during setup; an error message or QEMU's exit fails.
  Result<AgentMessage> wait_for_message(const std::string& type, std::chrono::seconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      while (m_pending_next < m_pending_frames.size()) {
        channel::Frame& frame = m_pending_frames[m_pending_next++];
        if (frame.type != FrameType::Control) continue;
        AgentMessage message = TRY(channel::parse_agent_message(frame));
        log_message(message);
        if (message.type == type) return message;
        if (message.type == "error")
          return fail(message.text.empty() ? "the agent reported an error" : message.text);
      }
      m_pending_frames.clear();
      m_pending_next = 0;
      TRY(m_channel->flush());
      auto now = Clock::now();
      if (now >= deadline)
        return fail(ETIMEDOUT,
                    "the VM did not answer within " + std::to_string(timeout.count()) + " s");
      auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                           std::chrono::milliseconds(100));
      std::vector<pollfd> fds = {
          {m_channel->fd(), static_cast<short>(POLLIN | (m_channel->wants_write() ? POLLOUT : 0)),
           0}};
      add_guest_output(fds, wait);
      if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count())) < 0 && errno != EINTR)
        return fail_errno("poll");
      for (const auto& entry : fds)
        if (entry.revents && entry.fd != m_channel->fd()) on_guest_output(entry.fd);
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        bool open = TRY(m_channel->receive(m_pending_frames));
        if (!open && m_pending_frames.empty()) return vm_stopped_error(std::nullopt);
      }
      if (auto status = m_vm->try_wait(); status && *status) return vm_stopped_error(*status);
    }
  }

  // The VM ended before the container was created: say what the guest and QEMU said last.
  tl::unexpected<Error> vm_stopped_error(std::optional<int> wait_status) {
    m_qemu_log.drain();
    m_console.drain();
    std::string message = describe_early_stop(m_console, m_qemu_log, wait_status);
    if (m_options.debug) message += "; " + keep_console_log();
    return fail(EIO, message);
  }

  // With enable_debug, the console log outlives the failed container (whose state directory
  // goes): copied beside the state directories as ID.console.log.
  std::string keep_console_log() {
    std::string kept = m_options.state_root + "/" + m_options.id + ".console.log";
    UniqueFd fd(::openat(m_state_dir.get(), "console.log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    auto text = fd ? sys::read_to_end(fd.get(), 2 << 20) : Result<std::string>(std::string());
    if (!fd || !text || !sys::write_file_atomic(kept, *text, 0600))
      return "the console log could not be kept";
    return "the console log is kept in " + kept;
  }

  Result<void> setup_stdio() {
    if (!m_terminal) {
      // The relay holds the caller's stdio, the shim itself none of it: when the container closes
      // its stdout and stderr the caller reads end of file, as runc's detached container gives.
      auto moved = [](int fd) { return UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 3)); };
      m_stdio.add(0, moved(0), moved(1), moved(2));
      UniqueFd null = TRY(sys::open("/dev/null", O_RDWR));
      for (int fd : {0, 1, 2}) ::dup2(null.get(), fd);
      return {};
    }
    UniqueFd slave = TRY(open_console_for(m_options.console_socket));
    m_terminal_fd = slave.get();
    // The input is a second descriptor for the slave: make it before `slave` is moved away
    // (argument evaluation order is unspecified).
    UniqueFd input(::fcntl(slave.get(), F_DUPFD_CLOEXEC, 0));
    m_stdio.add(0, std::move(input), std::move(slave), UniqueFd());
    send_window_size();
    return {};
  }

  void send_window_size() {
    winsize size{};
    if (m_terminal_fd >= 0 && ::ioctl(m_terminal_fd, TIOCGWINSZ, &size) == 0 && size.ws_row > 0)
      channel::send_message(*m_channel,
                            {{"type", "resize"}, {"rows", size.ws_row}, {"cols", size.ws_col}});
  }

  // The earliest moment something must happen without any descriptor becoming ready.
  std::chrono::milliseconds next_timeout() const {
    auto now = Clock::now();
    std::optional<Clock::time_point> next = m_kill_deadline;
    for (const auto& deadline : {m_start_deadline, m_query_deadline})
      if (deadline && (!next || *deadline < *next)) next = deadline;
    if (auto exec = m_execs->next_deadline(); exec && (!next || *exec < *next)) next = exec;
    if (!next) return std::chrono::milliseconds(-1);
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(*next - now) +
                        std::chrono::milliseconds(1));
  }

  Result<void> poll_once() {
    // While the guest is not taking what is queued for it, read nothing that queues more.
    bool congested = m_channel->congested();
    std::vector<pollfd> fds;
    fds.push_back(
        {m_channel->fd(),
         static_cast<short>((congested ? 0 : POLLIN) | (m_channel->wants_write() ? POLLOUT : 0)),
         0});
    fds.push_back({m_signal_fd.get(), POLLIN, 0});
    m_control.add_poll_fds(fds, !congested);
    if (!congested) {
      m_stdio.add_poll_fds(fds);
      m_execs->add_poll_fds(fds);
    } else {
      m_stdio.add_poll_fds(fds, StdioRelay::Input::Paused);
    }
    m_forwards->add_poll_fds(fds, !congested);
    std::chrono::milliseconds timeout = next_timeout();
    if (timeout.count() < 0) timeout = std::chrono::hours(1);
    add_guest_output(fds, timeout);

    if (m_pending_next < m_pending_frames.size()) TRY(handle_frames());
    if (::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) < 0) {
      if (errno == EINTR) return {};
      return fail_errno("poll");
    }
    for (const auto& entry : fds) {
      if (!entry.revents) continue;
      if (entry.fd == m_channel->fd()) {
        if (entry.revents & (POLLIN | POLLHUP | POLLERR)) {
          bool open = TRY(m_channel->receive(m_pending_frames));
          TRY(handle_frames());
          if (!open && !m_exit_message) return fail(EIO, "the agent closed the channel");
        }
      } else if (entry.fd == m_signal_fd.get()) {
        on_signals();
      } else if (on_guest_output(entry.fd)) {
        continue;
      } else {
        if (TRY(m_stdio.on_ready(entry.fd, *m_channel))) continue;
        if (TRY(m_forwards->on_ready(entry.fd))) continue;
        bool handled = false;
        if (auto request = m_control.on_readable(entry.fd, handled)) on_request(*request);
        if (handled) continue;  // its descriptor may have just become an exec session's
        m_execs->on_readable(entry.fd);
      }
    }
    m_execs->expire(Clock::now());
    m_execs->finish();
    return m_channel->flush();
  }

  Result<void> handle_frames() {
    while (m_pending_next < m_pending_frames.size()) {
      channel::Frame& frame = m_pending_frames[m_pending_next++];
      if (frame.type == FrameType::Control)
        TRY(on_message(TRY(channel::parse_agent_message(frame))));
      else if (PortForwards::owns(frame.stream))
        TRY(m_forwards->on_frame(frame));
      else
        TRY(m_stdio.on_frame(frame, *m_channel));
    }
    m_pending_frames.clear();
    m_pending_next = 0;
    return {};
  }

  static void log_message(const AgentMessage& message) {
    log::debug("agent: " + message.type +
               (message.exec ? " (exec " + std::to_string(*message.exec) + ")" : ""));
  }

  Result<void> on_message(const AgentMessage& message) {
    log_message(message);
    if (message.type == "ports" && message.ports) {
      if (m_forward_ports) m_forwards->on_ports(*message.ports);
      return {};
    }
    if (message.type == "connect_failed" && message.connection) {
      m_forwards->on_connect_failed(*message.connection, message.text);
      return {};
    }
    if (message.exec && (message.type == "started" || message.type == "error"))
      if (auto it = m_member_starts.find(*message.exec); it != m_member_starts.end()) {
        respond(it->second,
                message.type == "started"
                    ? json{{"ok", true}}
                    : json{{"ok", false},
                           {"error", message.text.empty() ? "start failed" : message.text}});
        m_member_starts.erase(it);
        return {};
      }
    if (message.exec) {
      m_execs->on_message(*message.exec, message);
      return {};
    }
    if (message.type == "exit") {
      if (m_exit_message) return {};
      m_exit_message = exit_status(message);
      log::info("the container exited with status " + std::to_string(*m_exit_message) +
                (message.oom_killed ? " (out of memory)" : ""));
      if (message.oom_killed) report_oom_kill(m_bundle.get(), m_options.bundle, m_options.id);
      // Nothing more will be read from the guest: stop sending stdin.
      m_stdio.close_input(0, *m_channel);
    } else if (message.type == "updated" || message.type == "processes" ||
               message.type == "frozen") {
      json reply = {{"ok", true}};
      for (const auto& process : message.processes)
        reply["processes"].push_back({{"pid", process.pid},
                                      {"ppid", process.ppid},
                                      {"uid", process.uid},
                                      {"cmd", process.command}});
      reply_pending_query(reply);
    } else if (message.type == "update_failed" || message.type == "processes_failed" ||
               message.type == "freeze_failed") {
      reply_pending_query(
          {{"ok", false}, {"error", message.text.empty() ? m_query + " failed" : message.text}});
    } else if (message.type == "started" || message.type == "error") {
      log::debug("the agent answered " + message.type);
      reply_pending_start(
          message.type == "started"
              ? json{{"ok", true}}
              : json{{"ok", false},
                     {"error", message.text.empty() ? "start failed" : message.text}});
    }
    return {};
  }

  void on_signals() {
    signalfd_siginfo info;
    while (::read(m_signal_fd.get(), &info, sizeof info) == sizeof info) {
      int signal = static_cast<int>(info.ssi_signo);
      if (signal == SIGCHLD) {
        if (auto status = m_vm->try_wait(); status && *status) {
          m_qemu_log.drain();
          log::error("the VM exited unexpectedly: " + m_qemu_log.last_line());
          m_exit_code = 128 + SIGKILL;
        }
      } else if (signal == SIGWINCH) {
        send_window_size();
      } else {
        channel::send_message(*m_channel, {{"type", "signal"}, {"signal", signal}});
      }
    }
  }

  // Requests are one JSON line (shim/control.h): {"op":"start"}, {"op":"kill","signal":N},
  // {"op":"exec",...}, {"op":"member",...}; a pod member's name it with "member".
  void on_request(ControlRequest& req) {
    const json& request = req.body;
    const std::string& op = req.op;
    const int signal = req.signal;
    const uint32_t member = req.member;
    log::debug("client: " + (op.empty() ? std::string("(no op)") : channel::printable(op, 64)) +
               (member ? " (member " + std::to_string(member) + ")" : ""));
    if (op == "start" && member) {
      if (m_member_starts.size() >= ControlSocket::kMaxClients || m_member_starts.count(member)) {
        respond(req.client, {{"ok", false}, {"error", "the shim is busy"}});
        return;
      }
      json start = {{"type", "start"}, {"exec", member}};
      channel::send_message(*m_channel, start);
      m_member_starts[member] = std::move(req.client);
    } else if (op == "member") {
      // A pod member (runtime/pod.h): created in this VM, its relay is its host process.
      json spec = request.contains("spec") ? request["spec"] : json();
      auto seccomp =
          compile_seccomp(spec.is_object() && spec.contains("linux") && spec["linux"].is_object()
                              ? spec["linux"].value("seccomp", json())
                              : json());
      if (!seccomp) {
        respond(req.client, {{"ok", false}, {"error", seccomp.error().message}});
        return;
      }
      m_execs->create_member(std::move(req.client), request, std::move(req.fds), !m_exit_message,
                             base64_encode(*seccomp));
    } else if ((op == "pause" || op == "resume") && member) {
      // The VM runs on for the pod: the member's cgroup in the guest is frozen instead.
      ask_agent(req, op, {{"type", "freeze"}, {"container", member}, {"frozen", op == "pause"}});
    } else if (op == "kill" && member && signal > 0 && signal < NSIG) {
      channel::send_message(*m_channel, {{"type", "signal"}, {"signal", signal}, {"exec", member}});
      respond(req.client, {{"ok", true}});
    } else if (op == "start") {
      log::debug("starting the container");
      json start = {{"type", "start"}};
      // An interface plumbed to the standby tap after create (runtime/late_network.h).
      if (request.contains("network") && request["network"].is_object())
        start["network"] = request["network"];
      channel::send_message(*m_channel, start);
      m_start_client = std::move(req.client);
      m_start_deadline = Clock::now() + kStartTimeout;
    } else if (op == "pause" || op == "resume") {
      // The whole VM stops: its clock, its devices, every process in it, as a cgroup freezer would.
      ::kill(m_vm->pid(), op == "pause" ? SIGSTOP : SIGCONT);
      m_paused = op == "pause";
      respond(req.client, {{"ok", true}});
    } else if (op == "kill" && signal > 0 && signal < NSIG) {
      if (signal == SIGKILL) {
        // A paused VM could not act on the signal: thaw it first, as runc does. And KILL means
        // dead whatever the guest does: the VM stops if the exit does not come in time.
        if (m_paused) ::kill(m_vm->pid(), SIGCONT), m_paused = false;
        if (!m_kill_deadline) m_kill_deadline = Clock::now() + kKillGrace;
      }
      channel::send_message(*m_channel, {{"type", "signal"}, {"signal", signal}});
      respond(req.client, {{"ok", true}});
    } else if ((op == "update" && request.contains("resources") &&
                request["resources"].is_object()) ||
               op == "ps") {
      json query = op == "ps" ? json{{"type", "ps"}}
                              : json{{"type", "update"}, {"resources", request["resources"]}};
      if (member) query["container"] = member;
      ask_agent(req, op, query);
    } else if (op == "exec") {
      m_execs->start(std::move(req.client), request, std::move(req.fds), !m_exit_message, member);
    } else {
      respond(req.client, {{"ok", false}, {"error", "unknown request"}});
    }
  }

  // One question to the agent at a time (update, ps, a member's freeze); the next client waits
  // for its own turn. Answered by reply_pending_query.
  void ask_agent(ControlRequest& req, const std::string& op, const json& query) {
    if (m_query_client) {
      respond(req.client, {{"ok", false}, {"error", "the shim is busy with a " + m_query}});
      return;
    }
    channel::send_message(*m_channel, query);
    m_query = op;
    m_query_client = std::move(req.client);
    m_query_deadline = Clock::now() + kQueryTimeout;
  }

  void reply_pending_query(const json& reply) {
    m_query_deadline.reset();
    if (m_query_client) respond(m_query_client, reply);
  }

  void reply_pending_start(const json& reply) {
    m_start_deadline.reset();
    if (m_start_client) respond(m_start_client, reply);
  }

  const ShimOptions& m_options;
  UniqueFd m_state_dir;
  UniqueFd m_bundle;
  std::unique_ptr<hypervisor::Hypervisor> m_vm;
  std::unique_ptr<Channel> m_channel;
  GuestOutput m_console;
  GuestOutput m_qemu_log;
  std::vector<channel::Frame> m_pending_frames;
  size_t m_pending_next = 0;
  StdioRelay m_stdio;
  UniqueFd m_signal_fd;
  ControlSocket m_control;
  std::optional<ExecSessions> m_execs;     // once the channel exists
  std::optional<PortForwards> m_forwards;  // the guest's ports, for a pod of containerd's CRI
  bool m_forward_ports = false;
  bool m_paused = false;
  UniqueFd m_start_client;
  std::map<uint32_t, UniqueFd> m_member_starts;  // pod members' start clients, by member
  bool m_terminal = false;
  int m_terminal_fd = -1;
  std::optional<int> m_exit_message;
  std::optional<int> m_exit_code;
  std::optional<Clock::time_point> m_kill_deadline;
  std::optional<Clock::time_point> m_start_deadline;
  // The pending update or ps, answered when the agent replies or its deadline passes.
  std::string m_query;
  UniqueFd m_query_client;
  std::optional<Clock::time_point> m_query_deadline;
  json m_template_request;
};

}  // namespace

int run_sandbox(const ShimOptions& options, UniqueFd state_dir, UniqueFd ready_fd) {
  // Signals the container should get arrive here; SIGCHLD tells the VM stopped.
  sigset_t mask;
  sigemptyset(&mask);
  for (int signal :
       {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH, SIGCONT})
    sigaddset(&mask, signal);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd signal_fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));

  Sandbox sandbox(options, std::move(state_dir), std::move(signal_fd));
  auto prepared = sandbox.prepare();
  json report = prepared ? json{{"ok", true}, {"warning", *prepared}}
                         : json{{"ok", false}, {"error", prepared.error().message}};
  if (prepared && !sandbox.template_request().is_null())
    report["template"] = sandbox.template_request();
  (void)sys::write_all(ready_fd.get(), report.dump());
  ready_fd.reset();
  if (!prepared) {
    log::error(prepared.error().message);
    return 1;
  }
  // Parsing the spec and compiling its seccomp profile left freed heap behind: give it back
  // before idling for the container's whole life.
  ::malloc_trim(0);
  return sandbox.run();
}

}  // namespace vessel::shim

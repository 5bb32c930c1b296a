#include "shim/sandbox.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/channel/agent_messages.h"
#include "common/channel/host_messages.h"
#include "common/log.h"
#include "common/oci_spec.h"
#include "common/sys.h"
#include "host/confine.h"
#include "host/host_cgroup.h"
#include "host/mount_points.h"
#include "host/oom_report.h"
#include "host/terminal.h"
#include "shim/binds.h"
#include "shim/container_view.h"
#include "shim/control.h"
#include "shim/exec_sessions.h"
#include "shim/guest.h"
#include "shim/network.h"
#include "shim/pending.h"
#include "shim/port_forward.h"
#include "shim/requests.h"
#include "shim/seccomp.h"
#include "shim/stdio_relay.h"

namespace vessel::shim {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace host = channel::from_host;
namespace agent = channel::from_agent;

namespace {

constexpr auto kCreateTimeout = std::chrono::seconds(120);

class Sandbox {
 public:
  Sandbox(const ShimOptions& options, UniqueFd state_dir, UniqueFd signal_fd)
      : m_options(options),
        m_state_dir(std::move(state_dir)),
        m_signal_fd(std::move(signal_fd)),
        m_guest(options, m_state_dir.get()) {}
  ~Sandbox() { ::unlinkat(m_state_dir.get(), "shim.sock", 0); }

  // Everything up to "created": on failure the destructors stop the VM.
  Result<std::string> prepare() {
    TRY(make_mounts_private());
    oci::Spec spec = TRY(oci::parse_spec_text(
        TRY(sys::read_file(m_options.bundle + "/config.json", 4 << 20)), "config.json"));
    if (spec.root_path[0] != '/') spec.root_path = m_options.bundle + "/" + spec.root_path;
    m_terminal = spec.process.terminal;
    // Kept for the `oom` file Podman looks for there, after the shim has left the host's mounts.
    m_bundle = TRY(sys::open(m_options.bundle, O_PATH | O_DIRECTORY));
    std::string seccomp = TRY(compile_seccomp(spec.seccomp));
    Network network = TRY(prepare_network(spec));
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

    std::string warning;
    auto hello = TRY(m_guest.start(spec, vm_sizing(spec, cgroup_dirs), network, binds, warning));
    log::debug("the agent said hello");
    if (hello.version != channel::build_version())
      return fail(EPROTO,
                  channel::version_mismatch_message(channel::build_version(), hello.version));
    m_execs.emplace(m_stdio, m_guest.channel());
    m_forwards.emplace(m_guest.channel());
    m_requests.emplace(m_guest, *m_execs, m_pending, m_state);
    m_guest.send(
        host::Create{spec.document, network.description, binds.binds, seccomp, m_forward_ports});
    TRY(m_guest.wait_for<agent::Created>(kCreateTimeout));
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

  const json& template_request() const { return m_guest.template_request(); }

  int run() {
    while (!m_exit_code) {
      if (auto polled = poll_once(); !polled) {
        log::error(polled.error().message);
        return finish(128 + SIGKILL);
      }
      if (m_state.exit_status && m_stdio.written(0)) return finish(*m_state.exit_status);
      if (m_state.kill_deadline && Clock::now() >= *m_state.kill_deadline) {
        log::warning("the guest did not stop within 2 s of SIGKILL: stopping the VM");
        return finish(128 + SIGKILL);
      }
      if (m_pending.expire(Clock::now())) return finish(128 + SIGKILL);
    }
    return finish(*m_exit_code);
  }

 private:
  // The host's side of the network, and the guest's ports for a pod of containerd's CRI.
  Result<Network> prepare_network(const oci::Spec& spec) {
    log::debug("setting up the network");
    bool hooked = !spec.hooks.of("prestart").empty() || !spec.hooks.of("createRuntime").empty();
    Network network = TRY(setup_network(spec, hooked));
    if (!network.standby_mac.empty())
      TRY(sys::write_file_atomic_at(m_state_dir.get(), "standby-nic", network.standby_mac, 0644));
    log::debug("network ready");
    // containerd's PortForward dials the guest's ports here (port_forward.h). Only then: a
    // guest's ports are never listened on unasked.
    m_forward_ports = is_cri_sandbox(spec.annotations);
    if (m_forward_ports)
      if (auto allowed = allow_low_ports(); !allowed)
        log::warning("the guest's ports below 1024 cannot be forwarded: " +
                     allowed.error().message);
    return network;
  }

  // A pod's VM is sized for the pod where the engine limits the pod as a whole (its cgroup holds
  // the first container's: `podman pod create --memory --cpus`), and members' limits apply
  // inside it (docs/pods.md). containerd's CRI names the pod's total on its sandbox instead
  // (docs/kubernetes.md).
  static oci::Resources vm_sizing(const oci::Spec& spec,
                                  const std::vector<std::string>& cgroup_dirs) {
    oci::Resources sizing = spec.resources;
    oci::Resources pod = cri_pod_limits(spec.annotations);
    if (!pod.memory_limit && !pod.cpu_quota) pod = host_cgroup::enclosing_limits(cgroup_dirs);
    if (!sizing.memory_limit || *sizing.memory_limit <= 0) sizing.memory_limit = pod.memory_limit;
    if (!sizing.cpu_quota || *sizing.cpu_quota <= 0)
      sizing.cpu_quota = pod.cpu_quota, sizing.cpu_period = pod.cpu_period;
    return sizing;
  }

  int finish(int code) {
    log::debug("output written, stopping the VM");
    m_guest.stop();
    log::debug("the VM stopped");
    return code;
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
      m_guest.send(host::Resize{0, size.ws_row, size.ws_col});
  }

  // The earliest moment something must happen without any descriptor becoming ready.
  std::chrono::milliseconds next_timeout() const {
    std::optional<Clock::time_point> next = m_state.kill_deadline;
    for (const auto& deadline : {m_pending.next_deadline(), m_execs->next_deadline()})
      if (deadline && (!next || *deadline < *next)) next = deadline;
    if (!next) return std::chrono::hours(1);
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now()) +
                        std::chrono::milliseconds(1));
  }

  Result<void> poll_once() {
    // While the guest is not taking what is queued for it, read nothing that queues more.
    bool congested = m_guest.channel().congested();
    std::vector<pollfd> fds = {{m_signal_fd.get(), POLLIN, 0}};
    m_control.add_poll_fds(fds, !congested);
    m_stdio.add_poll_fds(fds, congested ? StdioRelay::Input::Paused : StdioRelay::Input::Read);
    if (!congested) m_execs->add_poll_fds(fds);
    m_forwards->add_poll_fds(fds, !congested);
    TRY(handle_frames());  // what arrived while the container was set up
    bool open = TRY(m_guest.poll(fds, next_timeout(), !congested));
    TRY(handle_frames());
    if (!open && !m_state.exit_status) return fail(EIO, "the agent closed the channel");
    for (const auto& entry : fds) {
      if (!entry.revents) continue;
      if (entry.fd == m_signal_fd.get()) {
        on_signals();
      } else if (TRY(m_stdio.on_ready(entry.fd, m_guest.channel())) ||
                 TRY(m_forwards->on_ready(entry.fd))) {
        continue;
      } else {
        bool handled = false;
        if (auto request = m_control.on_readable(entry.fd, handled)) m_requests->on(*request);
        if (handled) continue;  // its descriptor may have just become an exec session's
        m_execs->on_readable(entry.fd);
      }
    }
    m_execs->expire(Clock::now());
    m_execs->finish();
    return m_guest.channel().flush();
  }

  Result<void> handle_frames() {
    for (channel::Frame& frame : m_guest.take_frames()) {
      if (frame.type == channel::FrameType::Control)
        on_message(TRY(channel::parse_agent_message(frame)));
      else if (PortForwards::owns(frame.stream))
        TRY(m_forwards->on_frame(frame));
      else
        TRY(m_stdio.on_frame(frame, m_guest.channel()));
    }
    return {};
  }

  // The agent's messages, one handler each.
  void on_message(const channel::AgentMessage& message) {
    log::debug("agent: " + channel::type_of(message));
    std::visit([this](const auto& one) { handle(one); }, message);
  }

  void handle(const agent::Exit& exit) {
    if (exit.process != 0) return m_execs->on_exit(exit);
    if (m_state.exit_status) return;
    m_state.exit_status = exit.status();
    log::info("the container exited with status " + std::to_string(*m_state.exit_status) +
              (exit.oom_killed ? " (out of memory)" : ""));
    if (exit.oom_killed) report_oom_kill(m_bundle.get(), m_options.bundle, m_options.id);
    // Nothing more will be read from the guest: stop sending stdin.
    m_stdio.close_input(0, m_guest.channel());
  }

  void handle(const agent::Started& started) { m_pending.on_started(started.container); }
  void handle(const agent::Created& created) { m_execs->on_started(created.container); }
  void handle(const agent::ExecStarted& started) { m_execs->on_started(started.exec); }
  void handle(const agent::Failed& failed) {
    if (!m_pending.on_failed(failed.process, failed.message))
      m_execs->on_failed(failed.process, failed.message);
  }
  void handle(const agent::Answer& answer) { m_pending.on_answer(answer); }
  void handle(const agent::Ports& ports) {
    if (m_forward_ports) m_forwards->on_ports(ports.ports);
  }
  void handle(const agent::ConnectFailed& failed) {
    m_forwards->on_connect_failed(failed.connection, failed.message);
  }
  void handle(const agent::Hello&) {}
  void handle(const agent::TemplateReady&) {}
  void handle(const channel::Unknown&) {}

  void on_signals() {
    signalfd_siginfo info;
    while (::read(m_signal_fd.get(), &info, sizeof info) == sizeof info) {
      int signal = static_cast<int>(info.ssi_signo);
      if (signal == SIGCHLD) {
        if (auto status = m_guest.vm().try_wait(); status && *status) {
          m_guest.qemu_log().drain();
          log::error("the VM exited unexpectedly: " + m_guest.qemu_log().last_line());
          m_exit_code = 128 + SIGKILL;
        }
      } else if (signal == SIGWINCH) {
        send_window_size();
      } else {
        m_guest.send(host::Signal{0, signal});
      }
    }
  }

  const ShimOptions& m_options;
  UniqueFd m_state_dir;
  UniqueFd m_bundle;
  UniqueFd m_signal_fd;
  Guest m_guest;
  StdioRelay m_stdio;
  ControlSocket m_control;
  std::optional<ExecSessions> m_execs;     // once the channel exists
  std::optional<PortForwards> m_forwards;  // the guest's ports, for a pod of containerd's CRI
  PendingAnswers m_pending;
  RunState m_state;
  std::optional<Requests> m_requests;  // once the channel exists
  bool m_forward_ports = false;
  bool m_terminal = false;
  int m_terminal_fd = -1;
  std::optional<int> m_exit_code;
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

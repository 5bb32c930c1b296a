#include "agent/server.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>

#include <optional>

#include "agent/cgroup.h"
#include "agent/containers.h"
#include "agent/held_signals.h"
#include "agent/network.h"
#include "agent/port_forward.h"
#include "agent/process_table.h"
#include "agent/processes.h"
#include "agent/template.h"
#include "common/channel/agent_messages.h"
#include "common/channel/host_messages.h"
#include "common/log.h"

namespace vessel::agent {

namespace {

using channel::Channel;
using channel::FrameType;
namespace host = channel::from_host;
namespace reply = channel::from_agent;

// The loop and the dispatch: each message from the host has its handler below, and each
// handler answers through answer().
class Server {
 public:
  Server(UniqueFd channel_fd, UniqueFd signal_fd)
      : m_channel(std::move(channel_fd)), m_signal_fd(std::move(signal_fd)) {}

  Result<void> run() {
    send(reply::Hello{std::string(channel::build_version())});
    while (!m_shutdown) {
      TRY(poll_once());
      m_held_signals.release();
      report_exits();
      m_forwards.scan_if_due();
    }
    return {};
  }

 private:
  void send(const channel::AgentMessage& message) { channel::send(m_channel, message); }

  // `done` when `result` holds, else the failure, about `process`.
  void answer(const Result<void>& result, const channel::AgentMessage& done, uint32_t process = 0) {
    send(result ? done : channel::AgentMessage(reply::Failed{process, result.error().message}));
  }

  Result<void> poll_once() {
    std::vector<pollfd> fds;
    fds.push_back(
        {m_channel.fd(), static_cast<short>(POLLIN | (m_channel.wants_write() ? POLLOUT : 0)), 0});
    fds.push_back({m_signal_fd.get(), POLLIN, 0});
    m_processes.add_poll_fds(fds);
    m_forwards.add_poll_fds(fds);
    int timeout = m_forwards.timeout_ms();
    if (int held = m_held_signals.timeout_ms(); held >= 0 && (timeout < 0 || timeout > held))
      timeout = held;
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) return {};
      return fail_errno("poll");
    }
    for (const auto& entry : fds) {
      if (!entry.revents) continue;
      if (entry.fd == m_channel.fd()) {
        if (entry.revents & (POLLIN | POLLHUP | POLLERR)) TRY(on_channel_readable());
      } else if (entry.fd == m_signal_fd.get()) {
        m_processes.reap(m_signal_fd.get());
      } else if (!TRY(m_forwards.on_ready(entry.fd))) {
        TRY(m_processes.on_ready(entry.fd, m_channel));
      }
    }
    return m_channel.flush();
  }

  Result<void> on_channel_readable() {
    std::vector<channel::Frame> frames;
    bool open = TRY(m_channel.receive(frames));
    for (auto& frame : frames) TRY(on_frame(frame));
    if (!open) {
      log::info("the shim closed the channel");
      m_shutdown = true;
    }
    return {};
  }

  Result<void> on_frame(channel::Frame& frame) {
    if (frame.type != FrameType::Control) {
      if (PortForwards::owns(frame.stream)) return m_forwards.on_frame(frame);
      return m_processes.on_frame(frame, m_channel);
    }
    auto message = channel::parse_host_message(frame);
    if (!message) {
      send(reply::Failed{0, message.error().message});
      return {};
    }
    // A template's guest waits to be restored: nothing runs in a clone before it is its own.
    if (m_template && !std::holds_alternative<host::Resume>(*message)) {
      send(reply::Failed{0, "a template's guest takes only resume"});
      return {};
    }
    return std::visit([this](const auto& one) { return handle(one); }, *message);
  }

  Result<void> handle(const host::Create& message) {
    auto created = m_containers.create(message);
    answer(created, reply::Created{0});
    if (!created) return {};
    // The guest would sit idle while the host finishes `create` and Podman calls `start`:
    // bring the network up now, after the answer has left; `start` reports any failure.
    TRY(m_channel.flush());
    m_network_ready = configure_network(message.network, m_cards).map_error(context("network"));
    if (message.watch_ports) m_forwards.watch();
    return {};
  }

  Result<void> handle(const host::CreateMember& message) {
    answer(m_containers.create_member(message), reply::Created{message.member}, message.member);
    return {};
  }

  Result<void> handle(const host::Start& message) {
    // The container the VM was booted for, or a pod member.
    Container* container = m_containers.find(message.container);
    auto started = container ? m_network_ready : fail("no container was created");
    // An interface that reached the host's namespace after create (Docker's prestart hook).
    if (started && message.network)
      started = configure_network(*message.network, m_cards).map_error(context("network"));
    if (started) started = container->start();
    if (started) m_held_signals.started(message.container);
    answer(started, reply::Started{message.container}, message.container);
    return {};
  }

  Result<void> handle(const host::Exec& message) {
    answer(m_containers.exec(message), reply::ExecStarted{message.id}, message.id);
    return {};
  }

  Result<void> handle(const host::Signal& message) {
    Process* process = m_processes.find(message.process);
    if (process && !process->status) m_held_signals.send(process->id, process->pid, message.signal);
    return {};
  }

  Result<void> handle(const host::Resize& message) {
    Process* process = m_processes.find(message.process);
    if (process && process->terminal_fd >= 0) {
      winsize size{};
      size.ws_row = message.rows;
      size.ws_col = message.cols;
      ::ioctl(process->terminal_fd, TIOCSWINSZ, &size);
    }
    return {};
  }

  Result<void> handle(const host::Update& message) {
    Container* container = m_containers.find(message.container);
    auto resources =
        container ? oci::parse_resources(message.resources) : fail("no such container");
    auto applied = resources ? apply_limits(container->cgroup(), *resources)
                             : Result<void>(tl::unexpected(resources.error()));
    send_answer(applied);
    return {};
  }

  Result<void> handle(const host::Freeze& message) {
    // A pod member paused alone: the VM runs on for the others.
    Container* container = message.container ? m_containers.find(message.container) : nullptr;
    send_answer(container ? freeze(container->cgroup(), message.frozen)
                          : fail("no such pod member"));
    return {};
  }

  Result<void> handle(const host::ListProcesses& message) {
    Container* container = m_containers.find(message.container);
    auto listed = container ? list_processes(container->pid()) : fail("no such container");
    send(listed ? reply::Answer{std::nullopt, std::move(*listed)}
                : reply::Answer{listed.error().message, {}});
    return {};
  }

  void send_answer(const Result<void>& result) {
    send(result ? reply::Answer{} : reply::Answer{result.error().message, {}});
  }

  Result<void> handle(const host::Connect& message) {
    m_forwards.connect(message);
    return {};
  }

  Result<void> handle(const host::Template&) {
    if (!m_containers.empty()) {
      send(reply::Failed{0, "a guest that ran a container is no template"});
      return {};
    }
    auto prepared = prepare_for_template();
    answer(prepared ? Result<void>() : tl::unexpected(prepared.error()), reply::TemplateReady{});
    if (prepared) m_template = std::move(*prepared);
    return {};
  }

  Result<void> handle(const host::Resume& message) {
    if (!m_template) {
      send(reply::Failed{0, "a guest that was not saved takes no resume"});
      return {};
    }
    auto resumed = resume_from_template(message, *m_template);
    answer(resumed ? Result<void>() : tl::unexpected(resumed.error()),
           reply::Hello{std::string(channel::build_version())});
    if (!resumed) return {};
    m_cards = std::move(*resumed);
    m_template.reset();
    return {};
  }

  Result<void> handle(const host::SetClock& message) {
    if (auto set = set_clock(message); !set) log::warning(set.error().message);
    return {};
  }

  Result<void> handle(const host::Shutdown&) {
    m_shutdown = true;
    return {};
  }

  Result<void> handle(const channel::Unknown& message) {
    send(reply::Failed{0, "unknown request " + message.type});
    return {};
  }

  // An exit goes out only after the process's output streams reached end of file, so the shim
  // has every byte the process wrote before it learns the process is gone.
  void report_exits() {
    // A member sharing its pod's pid namespace: what its init left running ends with it.
    for (uint32_t id : m_processes.draining())
      if (Container* container = init_of(id); container && container->shares_pid())
        (void)kill_all(container->cgroup());
    for (uint32_t id : m_processes.finished()) {
      Process& process = *m_processes.find(id);
      Container* container = init_of(id);
      int status = *process.status;
      reply::Exit exit{id};
      if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
      // The container's memory limit, not a signal someone sent: Podman shows OOMKilled.
      if (container && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
          oom_killed(container->cgroup()))
        exit.oom_killed = true;
      else
        exit.exit_code = WEXITSTATUS(status);
      send(exit);
      process.reported = true;
      if (id == 0) continue;
      // A pod member is gone with its init.
      if (container) {
        m_containers.remove(id);
        m_held_signals.forget(id);
      }
      m_processes.erase(id);
    }
  }

  // The container whose init is process `id`, if it is one.
  Container* init_of(uint32_t id) {
    Process* process = m_processes.find(id);
    return process && process->id == process->container ? m_containers.find(id) : nullptr;
  }

  Channel m_channel;
  UniqueFd m_signal_fd;
  PortForwards m_forwards{m_channel};  // connections into the guest, for the pod's port-forward
  ProcessTable m_processes;
  Containers m_containers{m_processes};
  HeldSignals m_held_signals;
  std::optional<TemplateState> m_template;  // saved as a template: only a resume may come
  KnownCards m_cards;                       // given their MACs by the resume
  Result<void> m_network_ready = fail("the network is not configured yet");
  bool m_shutdown = false;
};

}  // namespace

Result<void> serve(UniqueFd channel_fd) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signal_fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd) return fail_errno("signalfd");
  Server server(std::move(channel_fd), std::move(signal_fd));
  return server.run();
}

}  // namespace vessel::agent

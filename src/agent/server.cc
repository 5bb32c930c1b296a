#include "agent/server.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>

#include "agent/cgroup.h"
#include "agent/container.h"
#include "agent/device_filter.h"
#include "agent/network.h"
#include "agent/port_forward.h"
#include "agent/processes.h"
#include "agent/template.h"
#include "common/base64.h"
#include "common/channel/messages.h"
#include "common/channel/stream.h"
#include "common/log.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

using channel::Channel;
using channel::FrameType;
using nlohmann::json;

constexpr const char* kRootfsTag = "rootfs";
// Bounded: every exec holds three streams and a process in the guest.
constexpr size_t kMaxProcesses = 1024;

// A process the shim follows: the container's init (id 0), an exec'd one (id 1, 2, ...), or a
// pod member's init (the id the shim gave the member), with its stdio on streams
// channel::stream_of(id, ...). `container` is the id of the container's init it belongs to.
struct Process {
  uint32_t id = 0;
  uint32_t container = 0;
  pid_t pid = -1;
  std::unique_ptr<channel::StreamReceiver> stdin;
  std::vector<std::unique_ptr<channel::StreamSender>> outputs;
  int terminal_fd = -1;
  std::optional<int> status;
  bool reported = false;

  Process(uint32_t process_id, uint32_t container_id, ContainerStdio& stdio)
      : id(process_id), container(container_id) {
    if (stdio.stdout_read && stdio.stdin_write && !stdio.stderr_read)
      terminal_fd = stdio.stdin_write.get();
    stdin = std::make_unique<channel::StreamReceiver>(channel::stream_of(id, channel::kStdin),
                                                      std::move(stdio.stdin_write));
    outputs.push_back(std::make_unique<channel::StreamSender>(
        channel::stream_of(id, channel::kStdout), std::move(stdio.stdout_read),
        channel::kPortWriteSize));
    if (stdio.stderr_read)
      outputs.push_back(std::make_unique<channel::StreamSender>(
          channel::stream_of(id, channel::kStderr), std::move(stdio.stderr_read),
          channel::kPortWriteSize));
  }
};

class Server {
 public:
  Server(UniqueFd channel_fd, UniqueFd signal_fd)
      : m_channel(std::move(channel_fd)), m_signal_fd(std::move(signal_fd)) {}

  Result<void> run() {
    channel::send_message(m_channel, {{"type", "hello"}, {"version", channel::build_version()}});
    while (!m_shutdown) {
      TRY(poll_once());
      release_held_signals();
      report_exits();
      m_forwards.scan_if_due();
    }
    return {};
  }

 private:
  Result<void> poll_once() {
    std::vector<pollfd> fds;
    fds.push_back(
        {m_channel.fd(), static_cast<short>(POLLIN | (m_channel.wants_write() ? POLLOUT : 0)), 0});
    fds.push_back({m_signal_fd.get(), POLLIN, 0});
    for (auto& [id, process] : m_processes) {
      for (auto& output : process.outputs)
        if (output->wants_read()) fds.push_back({output->fd(), POLLIN, 0});
      if (process.stdin->wants_write()) fds.push_back({process.stdin->fd(), POLLOUT, 0});
    }
    m_forwards.add_poll_fds(fds);
    int timeout = m_forwards.timeout_ms();
    if (!m_held_signals.empty() && (timeout < 0 || timeout > 10))
      timeout = 10;  // held signals are looked at every 10 ms
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) return {};
      return fail_errno("poll");
    }
    for (const auto& entry : fds) {
      if (!entry.revents) continue;
      if (entry.fd == m_channel.fd()) {
        if (entry.revents & (POLLIN | POLLHUP | POLLERR)) TRY(on_channel_readable());
      } else if (entry.fd == m_signal_fd.get()) {
        reap_children();
      } else if (!TRY(m_forwards.on_ready(entry.fd))) {
        for (auto& [id, process] : m_processes) {
          for (auto& output : process.outputs)
            if (output->fd() == entry.fd) TRY(output->on_readable(m_channel));
          if (process.stdin->fd() == entry.fd) TRY(process.stdin->on_writable(m_channel));
        }
      }
    }
    return m_channel.flush();
  }

  // A signal for the container's init just after start. The init is PID 1 of its namespace: a
  // signal it has no handler for yet is dropped, and under emulation a shell takes tens of
  // milliseconds to reach its `trap`, a cold first start read over 9p more than a second
  // (microseconds natively): Podman's `stop` right after
  // `run` would lose its TERM. So such a signal waits, at most kSettle after start, until the
  // program catches or ignores it; then it is delivered (and dropped as under runc if the
  // program never asked for it).
  static constexpr auto kSettle = std::chrono::seconds(3);
  struct HeldSignal {
    pid_t pid;
    int signal;
    std::chrono::steady_clock::time_point until;
  };

  static bool handles(pid_t pid, int signal) {
    auto status = sys::read_file("/proc/" + std::to_string(pid) + "/status", 8192);
    if (!status) return true;  // gone: nothing to wait for
    uint64_t mask = 0;
    for (const char* key : {"\nSigCgt:\t", "\nSigIgn:\t"}) {
      size_t at = status->find(key);
      if (at != std::string::npos) mask |= std::strtoull(status->c_str() + at + 9, nullptr, 16);
    }
    return mask >> (signal - 1) & 1;
  }

  void send_signal(const Process& process, int signal) {
    auto now = std::chrono::steady_clock::now();
    auto started = m_started_at.find(process.id);  // only inits have a start time
    if (started != m_started_at.end() && now < started->second + kSettle && signal != SIGKILL &&
        signal != SIGSTOP && signal > 0 && signal < 65 && !handles(process.pid, signal)) {
      m_held_signals.push_back({process.pid, signal, started->second + kSettle});
      return;
    }
    ::kill(process.pid, signal);
  }

  void release_held_signals() {
    auto now = std::chrono::steady_clock::now();
    std::erase_if(m_held_signals, [&](const HeldSignal& held) {
      if (now < held.until && !handles(held.pid, held.signal)) return false;
      ::kill(held.pid, held.signal);
      return true;
    });
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

  Process* process_of_stream(uint32_t stream) {
    auto it = m_processes.find(channel::process_of(stream));
    return it == m_processes.end() ? nullptr : &it->second;
  }

  Result<void> on_frame(channel::Frame& frame) {
    if (frame.type == FrameType::Control) return on_message(TRY(channel::parse_message(frame)));
    if (PortForwards::owns(frame.stream)) return m_forwards.on_frame(frame);
    Process* process = process_of_stream(frame.stream);
    if (!process) return {};  // a process that is gone already: nothing to deliver to
    switch (frame.type) {
      case FrameType::Data:
        if (frame.stream != process->stdin->stream())
          return fail(EPROTO,
                      "agent channel: data for output stream " + std::to_string(frame.stream));
        return process->stdin->on_data(m_channel, std::move(frame.payload));
      case FrameType::Close:
        if (frame.stream == process->stdin->stream()) process->stdin->on_close();
        return {};
      case FrameType::Credit:
        for (auto& output : process->outputs)
          if (output->stream() == frame.stream) return output->on_credit(frame.payload);
        return {};
      case FrameType::Control:
        break;
    }
    return {};
  }

  void reply(const json& message, std::optional<uint32_t> exec_id) {
    json out = message;
    if (exec_id) out["exec"] = *exec_id;
    channel::send_message(m_channel, out);
  }

  Result<void> on_message(const json& message) {
    const std::string type = message["type"];
    std::optional<uint32_t> exec_id;
    if (message.contains("exec") && message["exec"].is_number_unsigned())
      exec_id = message["exec"].get<uint32_t>();
    // A template's guest waits to be restored: nothing runs in a clone before it is its own.
    if (m_template && type != "resume") {
      reply({{"type", "error"}, {"message", "a template's guest takes only resume"}}, exec_id);
      return {};
    }
    if (type == "template") {
      if (!m_containers.empty()) {
        reply({{"type", "error"}, {"message", "a guest that ran a container is no template"}},
              exec_id);
        return {};
      }
      auto prepared = prepare_for_template();
      if (!prepared) {
        reply({{"type", "error"}, {"message", prepared.error().message}}, exec_id);
        return {};
      }
      m_template = std::move(*prepared);
      reply({{"type", "template_ready"}}, std::nullopt);
    } else if (type == "resume") {
      if (!m_template) {
        reply({{"type", "error"}, {"message", "a guest that was not saved takes no resume"}},
              std::nullopt);
        return {};
      }
      auto resumed = resume_from_template(message, *m_template);
      if (!resumed) {
        reply({{"type", "error"}, {"message", resumed.error().message}}, std::nullopt);
        return {};
      }
      m_cards = std::move(*resumed);
      m_template.reset();
      reply({{"type", "hello"}, {"version", channel::build_version()}}, std::nullopt);
    } else if (type == "create" && exec_id) {
      auto created = create_member(*exec_id, message);
      reply(created ? json{{"type", "created"}}
                    : json{{"type", "error"}, {"message", created.error().message}},
            exec_id);
    } else if (type == "create") {
      auto created = create(message);
      reply(created ? json{{"type", "created"}}
                    : json{{"type", "error"}, {"message", created.error().message}},
            std::nullopt);
      if (created) {
        // The guest would sit idle while the host finishes `create` and Podman calls `start`:
        // bring the network up now, after the answer has left; `start` reports any failure.
        TRY(m_channel.flush());
        m_network_ready = configure_network(m_network, m_cards).map_error(context("network"));
        if (message.value("watch_ports", false)) m_forwards.watch();
      }
    } else if (type == "start") {
      // The container the VM was booted for, or the pod member `exec`.
      Container* container = container_of(exec_id.value_or(0));
      auto started = container ? m_network_ready : fail("no container was created");
      // An interface that reached the host's namespace after create (Docker's prestart hook).
      if (started && message.contains("network") && message["network"].is_object())
        started = configure_network(message["network"], m_cards).map_error(context("network"));
      if (started) started = container->start();
      if (started) m_started_at[exec_id.value_or(0)] = std::chrono::steady_clock::now();
      reply(started ? json{{"type", "started"}}
                    : json{{"type", "error"}, {"message", started.error().message}},
            exec_id);
    } else if (type == "update") {
      Container* container = container_of(message.value("container", 0u));
      auto updated = container ? oci::parse_resources(message.value("resources", json::object()))
                               : fail("no such container");
      auto applied = updated ? apply_limits(container->cgroup(), *updated)
                             : Result<void>(tl::unexpected(updated.error()));
      reply(applied ? json{{"type", "updated"}}
                    : json{{"type", "update_failed"}, {"message", applied.error().message}},
            std::nullopt);
    } else if (type == "freeze") {
      // A pod member paused alone: the VM runs on for the others.
      uint32_t id = message.value("container", 0u);
      Container* container = id ? container_of(id) : nullptr;
      auto frozen = container ? freeze(container->cgroup(), message.value("frozen", true))
                              : fail("no such pod member");
      reply(frozen ? json{{"type", "frozen"}}
                   : json{{"type", "freeze_failed"}, {"message", frozen.error().message}},
            std::nullopt);
    } else if (type == "ps") {
      Container* container = container_of(message.value("container", 0u));
      auto listed = container ? list_processes(container->pid()) : fail("no such container");
      reply(listed ? json{{"type", "processes"}, {"processes", *listed}}
                   : json{{"type", "processes_failed"}, {"message", listed.error().message}},
            std::nullopt);
    } else if (type == "exec" && exec_id) {
      auto executed = exec(*exec_id, message);
      reply(executed ? json{{"type", "exec_started"}}
                     : json{{"type", "error"}, {"message", executed.error().message}},
            exec_id);
    } else if (type == "signal") {
      auto it = m_processes.find(exec_id.value_or(0));
      if (it != m_processes.end() && !it->second.status && message.contains("signal") &&
          message["signal"].is_number_integer())
        send_signal(it->second, message["signal"].get<int>());
    } else if (type == "resize") {
      auto it = m_processes.find(exec_id.value_or(0));
      if (it != m_processes.end() && it->second.terminal_fd >= 0) {
        winsize size{};
        size.ws_row = message.value("rows", static_cast<unsigned short>(24));
        size.ws_col = message.value("cols", static_cast<unsigned short>(80));
        ::ioctl(it->second.terminal_fd, TIOCSWINSZ, &size);
      }
    } else if (type == "connect") {
      m_forwards.connect(message);
    } else if (type == "clock") {
      if (auto set = set_clock(message); !set) log::warning(set.error().message);
    } else if (type == "shutdown") {
      m_shutdown = true;
    } else {
      reply({{"type", "error"}, {"message", "unknown request " + type}}, exec_id);
    }
    return {};
  }

  // The binds the host describes; a mount clone ("tree_fd") is only ever the agent's own.
  static json binds_of(const json& message) {
    json binds = message.value("binds", json::array());
    for (auto& bind : binds)
      if (bind.is_object()) bind.erase("tree_fd");
    return binds;
  }

  Container* container_of(uint32_t id) {
    auto it = m_containers.find(id);
    return it == m_containers.end() ? nullptr : it->second.get();
  }

  Result<void> create(const json& message) {
    if (m_containers.count(0)) return fail("a container was created already");
    if (!message.contains("spec")) return fail("create without a spec");
    oci::Spec spec = TRY(oci::parse_spec(message["spec"]));
    std::string seccomp = TRY(base64_decode(message.value("seccomp", "")));
    m_network = message.value("network", json::object());
    oci::Resources limits = spec.resources;
    limits.devices = effective_device_rules(spec);
    bool limited = limits.memory_limit || limits.pids_limit || limits.cpu_quota ||
                   !limits.cpuset_cpus.empty() || !limits.devices.empty();
    Placement placement{{kRootfsTag, ""}};
    if (auto made = create_cgroup(placement.cgroup, limits); !made) {
      if (limited) return tl::unexpected(made.error());
      log::warning("no cgroup for the container: " + made.error().message);
    }
    ContainerStdio stdio;
    json binds = binds_of(message);
    // The container's volumes are entries of the pod volume share (shim/binds.h).
    for (const auto& bind : binds)
      if (bind.is_object() && bind.contains("path"))
        TRY(mount_pod_share(channel::kPodVolumesTag).map_error(context("the volumes' share")));
    auto container =
        std::make_unique<Container>(TRY(Container::create(spec, placement, binds, seccomp, stdio)));
    auto [it, _] = m_processes.try_emplace(0, 0, 0, stdio);
    it->second.pid = container->pid();
    m_containers[0] = std::move(container);
    return {};
  }

  // A pod member, created as process `id`: its root is the directory the host mounted into the
  // pod's share, its limits a cgroup of its own, and it joins the pod's namespaces its spec names.
  Result<void> create_member(uint32_t id, const json& message) {
    Container* pod = container_of(0);
    if (!pod || m_processes.count(0) == 0 || m_processes.at(0).status)
      return fail("the pod's VM has no running container to join");
    if (id == 0 || id > channel::kMaxProcessId || m_processes.count(id)) return fail("bad id");
    if (m_processes.size() >= kMaxProcesses) return fail("too many processes");
    if (!message.contains("spec") || !message.contains("root") || !message["root"].is_string())
      return fail("create without a spec or root");
    std::string root = message["root"];
    if (root.empty() || root.find('/') != std::string::npos || root[0] == '.')
      return fail("bad root directory name");
    oci::Spec spec = TRY(oci::parse_spec(message["spec"]));
    std::string seccomp = TRY(base64_decode(message.value("seccomp", "")));
    for (const char* tag : {channel::kPodRootsTag, channel::kPodVolumesTag})
      TRY(mount_pod_share(tag).map_error(context("the pod's shares")));
    Placement placement{
        {channel::kPodRootsTag, root}, "container-" + std::to_string(id), pod->pid()};
    json binds = binds_of(message);
    // A member in the pod's IPC namespace shares its /dev/shm too, as under runc (Podman binds
    // the infra container's into every member): the pod's tmpfs, not one of its own.
    UniqueFd pod_shm;
    const oci::Namespace* ipc = spec.find_namespace("ipc");
    if (ipc && !ipc->path.empty())
      for (auto& bind : binds)
        if (bind.is_object() && bind.value("destination", "") == "/dev/shm" &&
            bind.contains("tmpfs_size")) {
          if (!pod_shm) pod_shm = TRY(clone_mount_of(pod->pid(), "/dev/shm"));
          bind.erase("tmpfs_size");
          bind["tree_fd"] = pod_shm.get();
        }
    oci::Resources limits = spec.resources;
    limits.devices = effective_device_rules(spec);
    TRY(create_cgroup(placement.cgroup, limits));
    ContainerStdio stdio;
    auto created = Container::create(spec, placement, binds, seccomp, stdio);
    if (!created) {
      remove_cgroup(placement.cgroup);
      return tl::unexpected(created.error());
    }
    auto [it, _] = m_processes.try_emplace(id, id, id, stdio);
    it->second.pid = created->pid();
    m_containers[id] = std::make_unique<Container>(std::move(*created));
    return {};
  }

  Result<void> exec(uint32_t id, const json& message) {
    uint32_t container_id = message.value("container", 0u);
    Container* container = container_of(container_id);
    if (!container || m_processes.count(container_id) == 0 || m_processes.at(container_id).status)
      return fail("the container is not running");
    if (id == 0 || id > channel::kMaxProcessId || m_processes.count(id)) return fail("bad exec id");
    if (m_processes.size() >= kMaxProcesses) return fail("too many exec sessions");
    oci::Process process = TRY(oci::parse_process(message.value("process", json::object())));
    ContainerStdio stdio;
    pid_t pid = TRY(container->exec(process, stdio));
    auto [it, _] = m_processes.try_emplace(id, id, container_id, stdio);
    it->second.pid = pid;
    return {};
  }

  void reap_children() {
    signalfd_siginfo info;
    while (::read(m_signal_fd.get(), &info, sizeof info) == sizeof info) {
    }
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (auto& [id, process] : m_processes)
        if (process.pid == pid) process.status = status;
    }
  }

  // An exit goes out only after the process's output streams reached end of file, so the shim
  // has every byte the process wrote before it learns the process is gone.
  void report_exits() {
    for (auto it = m_processes.begin(); it != m_processes.end();) {
      Process& process = it->second;
      bool drained = true;
      for (auto& output : process.outputs) drained &= !output->open();
      Container* container = process.id == process.container ? container_of(process.id) : nullptr;
      // A member sharing its pod's pid namespace: what its init left running ends with it.
      if (container && container->shares_pid() && process.status && !drained)
        (void)kill_all(container->cgroup());
      if (!process.status || process.reported || !drained) {
        ++it;
        continue;
      }
      json message = {{"type", "exit"}};
      if (WIFSIGNALED(*process.status)) message["signal"] = WTERMSIG(*process.status);
      // The container's memory limit, not a signal someone sent: Podman shows OOMKilled.
      if (container && WIFSIGNALED(*process.status) && WTERMSIG(*process.status) == SIGKILL &&
          oom_killed(container->cgroup()))
        message["oom_killed"] = true;
      else
        message["exit_code"] = WEXITSTATUS(*process.status);
      reply(message, process.id == 0 ? std::nullopt : std::optional<uint32_t>(process.id));
      process.reported = true;
      if (process.id == 0) {
        ++it;
        continue;
      }
      // A pod member is gone with its init: its cgroup (empty now: its pid namespace ended) too.
      if (container) {
        remove_cgroup(container->cgroup());
        m_containers.erase(process.id);
        m_started_at.erase(process.id);
      }
      it = m_processes.erase(it);
    }
  }

  Channel m_channel;
  UniqueFd m_signal_fd;
  PortForwards m_forwards{m_channel};  // connections into the guest, for the pod's port-forward
  // The container the VM was booted for (0) and the pod members, by the id of their init.
  std::map<uint32_t, std::unique_ptr<Container>> m_containers;
  std::optional<TemplateState> m_template;  // saved as a template: only a resume may come
  KnownCards m_cards;                       // given their MACs by the resume
  std::map<uint32_t, Process> m_processes;
  std::map<uint32_t, std::chrono::steady_clock::time_point> m_started_at;  // by init id
  std::vector<HeldSignal> m_held_signals;
  json m_network;
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

#include "shim/sandbox.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/base64.h"
#include "common/channel/messages.h"
#include "common/channel/stream.h"
#include "common/log.h"
#include "common/oci_spec.h"
#include "common/sys.h"
#include "common/terminal.h"
#include "hypervisor/accel.h"
#include "hypervisor/hypervisor.h"
#include "shim/network.h"
#include "shim/seccomp.h"
#include "shim/stdio_relay.h"

namespace vessel::shim {

using channel::Channel;
using channel::FrameType;
using nlohmann::json;

Result<ShimOptions> load_options(const std::string& path) {
  std::string text = TRY(sys::read_file(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail(path + " is not valid JSON");
  ShimOptions o;
  try {
    o.id = j.at("id");
    o.state_dir = j.at("state_dir");
    o.state_root = j.at("state_root");
    o.bundle = j.at("bundle");
    o.console_socket = j.value("console_socket", "");
    o.hypervisor_path = j.at("hypervisor_path");
    o.kernel = j.at("kernel");
    o.initrd = j.at("initrd");
    o.machine_type = j.at("machine_type");
    o.kernel_params = j.value("kernel_params", "");
    o.accel = j.value("accel", "auto");
    o.vcpus = j.value("vcpus", 1u);
    o.memory_mib = j.value("memory_mib", 256u);
    o.debug = j.value("debug", false);
  } catch (const json::exception& error) {
    return fail(path + ": " + error.what());
  }
  return o;
}

namespace {

constexpr auto kBootTimeout = std::chrono::seconds(120);

// The last line QEMU wrote, to explain why it stopped.
std::string qemu_complaint(const std::string& log_path) {
  auto text = sys::read_file(log_path, 1 << 16).value_or("");
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t start = text.rfind('\n');
  return start == std::string::npos ? text : text.substr(start + 1);
}

// Bind mounts come from the host, which the guest cannot see: a small regular file (resolv.conf,
// hosts, hostname, .containerenv) travels inside the create message; a directory (a volume) is
// shared over 9p. Anything else is left out, and logged.
constexpr size_t kMaxBoundFile = 1 << 20;

Result<std::vector<hypervisor::Share>> plan_binds(const oci::Spec& spec, json& binds) {
  std::vector<hypervisor::Share> shares;
  for (const auto& mount : spec.mounts) {
    bool bind = mount.type == "bind";
    bool readonly = false;
    for (const auto& option : mount.options) {
      bind |= option == "bind" || option == "rbind";
      readonly |= option == "ro";
    }
    if (!bind) continue;
    struct stat st;
    if (::stat(mount.source.c_str(), &st) < 0)
      return fail_errno("bind mount source " + mount.source);
    if (S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) <= kMaxBoundFile) {
      std::string content = TRY(sys::read_file(mount.source, kMaxBoundFile));
      binds.push_back({{"destination", mount.destination},
                       {"content", base64_encode(content)},
                       {"readonly", readonly}});
    } else if (S_ISDIR(st.st_mode)) {
      std::string tag = "volume" + std::to_string(shares.size());
      shares.push_back({tag, mount.source, readonly});
      binds.push_back({{"destination", mount.destination}, {"share", tag}, {"readonly", readonly}});
    } else {
      log::warning("leaving out bind mount " + mount.source + " on " + mount.destination +
                   ": not a file or directory");
    }
  }
  return shares;
}

class Sandbox {
 public:
  Sandbox(const ShimOptions& options, UniqueFd signal_fd)
      : m_options(options), m_signal_fd(std::move(signal_fd)) {}

  // Everything up to "created": on failure the destructor stops the VM.
  Result<std::string> prepare() {
    hypervisor::Accel requested = m_options.accel == "kvm"   ? hypervisor::Accel::Kvm
                                  : m_options.accel == "tcg" ? hypervisor::Accel::Tcg
                                                             : hypervisor::Accel::Auto;
    auto choice = TRY(hypervisor::choose_accel(requested, m_options.state_root));
    if (!choice.warning.empty()) log::warning(choice.warning);

    std::string config_text = TRY(sys::read_file(m_options.bundle + "/config.json", 4 << 20));
    json config = json::parse(config_text, nullptr, false);
    oci::Spec spec = TRY(oci::parse_spec_text(config_text, "config.json"));
    if (spec.root_path[0] != '/') spec.root_path = m_options.bundle + "/" + spec.root_path;
    m_terminal = spec.process.terminal;

    log::debug("setting up the network");
    std::string seccomp =
        TRY(compile_seccomp(config.contains("linux") && config["linux"].is_object()
                                ? config["linux"].value("seccomp", json())
                                : json()));
    Network network = TRY(setup_network(spec));
    log::debug("network ready");
    json binds = json::array();
    std::vector<hypervisor::Share> volumes = TRY(plan_binds(spec, binds));

    auto [ours, theirs] = TRY(sys::socketpair());
    hypervisor::VmConfig vm;
    vm.name = "vessel-" + m_options.id;
    vm.hypervisor_path = m_options.hypervisor_path;
    vm.kernel = m_options.kernel;
    vm.initrd = m_options.initrd;
    vm.machine_type = m_options.machine_type;
    vm.kernel_params = m_options.kernel_params;
    vm.vcpus = m_options.vcpus;
    vm.memory_mib = m_options.memory_mib;
    vm.accel = choice.accel;
    if (vm.accel == hypervisor::Accel::Tcg)
      vm.tsc_khz = hypervisor::host_tsc_khz(m_options.state_root);
    vm.shares.push_back({"rootfs", spec.root_path, spec.root_readonly});
    vm.shares.insert(vm.shares.end(), volumes.begin(), volumes.end());
    for (const auto& tap : network.taps) vm.nics.push_back({tap.fd.get(), tap.mac});
    vm.agent_fd = theirs.get();
    vm.console_log = m_options.state_dir + "/console.log";
    m_vm = hypervisor::make_qemu();
    TRY(m_vm->start(vm));
    log::debug("QEMU started");
    theirs.reset();
    m_channel = std::make_unique<Channel>(std::move(ours));

    json hello = TRY(wait_for_message("hello", kBootTimeout));
    log::debug("the agent said hello");
    std::string agent_version = hello.value("version", "unknown");
    if (agent_version != channel::build_version())
      return fail(EPROTO,
                  channel::version_mismatch_message(channel::build_version(), agent_version));

    channel::send_message(*m_channel, {{"type", "create"},
                                       {"spec", config},
                                       {"network", network.description},
                                       {"binds", binds},
                                       {"seccomp", base64_encode(seccomp)}});
    TRY(wait_for_message("created", kBootTimeout));
    log::debug("the container is created");
    TRY(setup_stdio());
    m_control = TRY(sys::unix_listen(m_options.state_dir + "/shim.sock"));
    TRY(sys::set_nonblocking(m_control.get()));
    return choice.warning;
  }

  int run() {
    while (!m_exit_code) {
      if (auto polled = poll_once(); !polled) {
        log::error(polled.error().message);
        return finish(128 + SIGKILL);
      }
      if (m_exit_message && all_output_written()) return finish(*m_exit_message);
    }
    return finish(*m_exit_code);
  }

  ~Sandbox() { ::unlink((m_options.state_dir + "/shim.sock").c_str()); }

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

  // Waits for one control message of `type` during setup; an error message or QEMU's exit fails.
  Result<json> wait_for_message(const std::string& type, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      while (!m_pending_frames.empty()) {
        channel::Frame frame = std::move(m_pending_frames.front());
        m_pending_frames.erase(m_pending_frames.begin());
        if (frame.type != FrameType::Control) continue;
        json message = TRY(channel::parse_message(frame));
        if (message["type"] == type) return message;
        if (message["type"] == "error")
          return fail(message.value("message", "the agent reported an error"));
      }
      TRY(m_channel->flush());
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline)
        return fail(ETIMEDOUT,
                    "the VM did not answer within " + std::to_string(timeout.count()) + " s");
      auto wait = std::min<std::chrono::milliseconds>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
          std::chrono::milliseconds(100));
      pollfd entry{m_channel->fd(),
                   static_cast<short>(POLLIN | (m_channel->wants_write() ? POLLOUT : 0)), 0};
      if (::poll(&entry, 1, static_cast<int>(wait.count())) < 0 && errno != EINTR)
        return fail_errno("poll");
      if (entry.revents & (POLLIN | POLLHUP | POLLERR)) {
        bool open = TRY(m_channel->receive(m_pending_frames));
        if (!open && m_pending_frames.empty()) return vm_stopped_error();
      }
      if (auto status = m_vm->try_wait(); status && *status) return vm_stopped_error();
    }
  }

  tl::unexpected<Error> vm_stopped_error() {
    std::string why = qemu_complaint(m_options.state_dir + "/console.log.qemu");
    return fail(EIO, "the VM stopped while starting" +
                         (why.empty() ? std::string() : " (QEMU: " + why + ")"));
  }

  Result<void> setup_stdio() {
    if (!m_terminal) {
      m_stdio.add(0, UniqueFd(::dup(0)), UniqueFd(::dup(1)), UniqueFd(::dup(2)));
      return {};
    }
    UniqueFd slave = TRY(open_console_for(m_options.console_socket));
    m_terminal_fd = slave.get();
    m_stdio.add(0, UniqueFd(::dup(slave.get())), std::move(slave), UniqueFd());
    send_window_size();
    return {};
  }

  void send_window_size() {
    winsize size{};
    if (m_terminal_fd >= 0 && ::ioctl(m_terminal_fd, TIOCGWINSZ, &size) == 0 && size.ws_row > 0)
      channel::send_message(*m_channel,
                            {{"type", "resize"}, {"rows", size.ws_row}, {"cols", size.ws_col}});
  }

  Result<void> poll_once() {
    std::vector<pollfd> fds;
    fds.push_back({m_channel->fd(),
                   static_cast<short>(POLLIN | (m_channel->wants_write() ? POLLOUT : 0)), 0});
    fds.push_back({m_signal_fd.get(), POLLIN, 0});
    fds.push_back({m_control.get(), POLLIN, 0});
    m_stdio.add_poll_fds(fds);
    for (auto& client : m_clients) fds.push_back({client.fd.get(), POLLIN, 0});
    for (auto& [id, session] : m_execs) fds.push_back({session.client.get(), POLLIN, 0});

    if (!m_pending_frames.empty()) TRY(handle_frames());
    if (::poll(fds.data(), fds.size(), -1) < 0) {
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
      } else if (entry.fd == m_control.get()) {
        accept_clients();
      } else {
        if (TRY(m_stdio.on_ready(entry.fd, *m_channel))) continue;
        bool handled = false;
        for (auto& client : m_clients)
          if (client.fd.get() == entry.fd) on_client(client), handled = true;
        if (handled) continue;  // its descriptor may have just become an exec session's
        std::optional<uint32_t> exec_id;
        for (auto& [id, session] : m_execs)
          if (session.client.get() == entry.fd) exec_id = id;
        if (exec_id) on_exec_client(*exec_id, m_execs.at(*exec_id));
      }
    }
    finish_execs();
    std::erase_if(m_clients, [](const Client& client) { return !client.fd; });
    return m_channel->flush();
  }

  Result<void> handle_frames() {
    auto frames = std::move(m_pending_frames);
    m_pending_frames.clear();
    for (auto& frame : frames) {
      if (frame.type == FrameType::Control)
        TRY(on_message(TRY(channel::parse_message(frame))));
      else
        TRY(m_stdio.on_frame(frame, *m_channel));
    }
    return {};
  }

  struct Client {
    UniqueFd fd;
    std::string request;
    std::vector<UniqueFd> fds;  // passed with the request
  };

  Result<void> on_message(const json& message) {
    const std::string type = message["type"];
    if (message.contains("exec") && message["exec"].is_number_unsigned())
      return on_exec_message(message["exec"].get<uint32_t>(), type, message);
    if (type == "exit") {
      if (message.contains("signal"))
        m_exit_message = 128 + message["signal"].get<int>();
      else
        m_exit_message = message.value("exit_code", 255);
      log::info("the container exited with status " + std::to_string(*m_exit_message));
      // Nothing more will be read from the guest: stop sending stdin.
      m_stdio.close_input(0, *m_channel);
    } else if (type == "started" || type == "error") {
      log::debug("the agent answered " + type);
      reply_pending_start(
          type == "started"
              ? json{{"ok", true}}
              : json{{"ok", false}, {"error", message.value("message", "start failed")}});
    }
    return {};
  }

  // An exec session: the relay process (`vessel exec`) whose pid conmon watches holds `client`
  // open until the exec'd process's exit code arrives on it.
  struct ExecSession {
    UniqueFd client;
    std::string request;  // a partial line from the relay
    std::optional<int> exit_code;
  };

  Result<void> on_exec_message(uint32_t id, const std::string& type, const json& message) {
    auto it = m_execs.find(id);
    if (it == m_execs.end()) return {};
    if (type == "exec_started") {
      (void)sys::write_all(it->second.client.get(), json{{"ok", true}}.dump() + "\n");
    } else if (type == "error") {
      (void)sys::write_all(
          it->second.client.get(),
          json{{"ok", false}, {"error", message.value("message", "exec failed")}}.dump() + "\n");
      end_exec(id);
    } else if (type == "exit") {
      it->second.exit_code = message.contains("signal") ? 128 + message["signal"].get<int>()
                                                        : message.value("exit_code", 255);
      m_stdio.close_input(id, *m_channel);
    }
    return {};
  }

  // Forgets the session's streams and closes the relay's connection (which ends the relay).
  void end_exec(uint32_t id) {
    m_stdio.remove(id, *m_channel);
    m_execs.erase(id);
  }

  // Sends each finished exec's code to its relay once its output has been written out.
  void finish_execs() {
    std::vector<uint32_t> done;
    for (auto& [id, session] : m_execs)
      if (session.exit_code && m_stdio.written(id)) {
        (void)sys::write_all(session.client.get(),
                             json{{"exit_code", *session.exit_code}}.dump() + "\n");
        done.push_back(id);
      }
    for (uint32_t id : done) end_exec(id);
  }

  // {"op":"exec","process":{...},"terminal":bool} with the relay's stdio (three descriptors, or
  // one pty slave) attached.
  void start_exec(Client& client, const json& request, std::vector<UniqueFd> fds) {
    bool terminal = request.value("terminal", false);
    if (fds.size() != (terminal ? 1u : 3u) || !request.contains("process") || m_exit_message) {
      respond(client.fd,
              {{"ok", false},
               {"error", m_exit_message ? "the container is not running" : "bad exec request"}});
      return;
    }
    uint32_t id = m_next_exec++;
    if (terminal)
      m_stdio.add(id, UniqueFd(::dup(fds[0].get())), std::move(fds[0]), UniqueFd());
    else
      m_stdio.add(id, std::move(fds[0]), std::move(fds[1]), std::move(fds[2]));
    channel::send_message(*m_channel,
                          {{"type", "exec"}, {"exec", id}, {"process", request["process"]}});
    m_execs[id] = ExecSession{std::move(client.fd), "", std::nullopt};
  }

  // Later lines from a relay: signals for its process ({"op":"signal"}) and window sizes.
  void on_exec_client(uint32_t id, ExecSession& session) {
    char buffer[4096];
    ssize_t n = ::read(session.client.get(), buffer, sizeof buffer);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0 || session.request.size() + n > 65536) {
      // The relay is gone (killed outright): its process goes too.
      channel::send_message(*m_channel, {{"type", "signal"}, {"signal", SIGKILL}, {"exec", id}});
      end_exec(id);
      return;
    }
    session.request.append(buffer, n);
    size_t newline;
    while ((newline = session.request.find('\n')) != std::string::npos) {
      json line = json::parse(session.request.substr(0, newline), nullptr, false);
      session.request.erase(0, newline + 1);
      if (!line.is_object()) continue;
      std::string op = line.value("op", "");
      if (op == "signal" && line.contains("signal") && line["signal"].is_number_integer())
        channel::send_message(
            *m_channel, {{"type", "signal"}, {"signal", line["signal"].get<int>()}, {"exec", id}});
      else if (op == "resize")
        channel::send_message(*m_channel, {{"type", "resize"},
                                           {"rows", line.value("rows", 24)},
                                           {"cols", line.value("cols", 80)},
                                           {"exec", id}});
    }
  }

  void on_signals() {
    signalfd_siginfo info;
    while (::read(m_signal_fd.get(), &info, sizeof info) == sizeof info) {
      int signal = static_cast<int>(info.ssi_signo);
      if (signal == SIGCHLD) {
        if (auto status = m_vm->try_wait(); status && *status) {
          log::error("the VM exited unexpectedly: " +
                     qemu_complaint(m_options.state_dir + "/console.log.qemu"));
          m_exit_code = 128 + SIGKILL;
        }
      } else if (signal == SIGWINCH) {
        send_window_size();
      } else {
        channel::send_message(*m_channel, {{"type", "signal"}, {"signal", signal}});
      }
    }
  }

  void accept_clients() {
    for (;;) {
      int fd = ::accept4(m_control.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      m_clients.push_back(Client{UniqueFd(fd), "", {}});
    }
  }

  // Requests are one JSON line: {"op":"start"}, {"op":"kill","signal":N} or {"op":"exec",...}.
  void on_client(Client& client) {
    char buffer[4096];
    std::vector<UniqueFd> fds;
    ssize_t n = sys::receive_with_fds(client.fd.get(), buffer, sizeof buffer, fds, 3);
    if (n <= 0 || client.request.size() + n > 65536) {
      client.fd.reset();
      return;
    }
    client.request.append(buffer, n);
    for (auto& fd : fds) client.fds.push_back(std::move(fd));
    if (client.request.find('\n') == std::string::npos) return;
    json request = json::parse(client.request, nullptr, false);
    std::string op = request.is_object() ? request.value("op", "") : "";
    if (op == "start") {
      log::debug("starting the container");
      channel::send_message(*m_channel, {{"type", "start"}});
      m_start_client = std::move(client.fd);
    } else if (op == "pause" || op == "resume") {
      // The whole VM stops: its clock, its devices, every process in it, as a cgroup freezer would.
      ::kill(m_vm->pid(), op == "pause" ? SIGSTOP : SIGCONT);
      m_paused = op == "pause";
      respond(client.fd, {{"ok", true}});
    } else if (op == "kill" && request.contains("signal") &&
               request["signal"].is_number_integer()) {
      // A paused VM could not act on the signal: KILL (podman rm -f) thaws it first, as runc does.
      if (m_paused && request["signal"].get<int>() == SIGKILL) {
        ::kill(m_vm->pid(), SIGCONT);
        m_paused = false;
      }
      channel::send_message(*m_channel,
                            {{"type", "signal"}, {"signal", request["signal"].get<int>()}});
      respond(client.fd, {{"ok", true}});
    } else if (op == "exec") {
      start_exec(client, request, std::move(client.fds));
    } else {
      respond(client.fd, {{"ok", false}, {"error", "unknown request"}});
    }
  }

  void respond(UniqueFd& fd, const json& reply) {
    (void)sys::write_all(fd.get(), reply.dump() + "\n");
    fd.reset();
  }

  void reply_pending_start(const json& reply) {
    if (m_start_client) respond(m_start_client, reply);
  }

  const ShimOptions& m_options;
  std::unique_ptr<hypervisor::Hypervisor> m_vm;
  std::unique_ptr<Channel> m_channel;
  std::vector<channel::Frame> m_pending_frames;
  StdioRelay m_stdio;
  UniqueFd m_signal_fd;
  UniqueFd m_control;
  std::vector<Client> m_clients;
  std::map<uint32_t, ExecSession> m_execs;
  uint32_t m_next_exec = 1;
  bool m_paused = false;
  UniqueFd m_start_client;
  bool m_terminal = false;
  int m_terminal_fd = -1;
  std::optional<int> m_exit_message;
  std::optional<int> m_exit_code;
};

}  // namespace

int run_sandbox(const ShimOptions& options, UniqueFd ready_fd) {
  // Signals the container should get arrive here; SIGCHLD tells the VM stopped.
  sigset_t mask;
  sigemptyset(&mask);
  for (int signal :
       {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH, SIGCONT})
    sigaddset(&mask, signal);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd signal_fd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));

  Sandbox sandbox(options, std::move(signal_fd));
  auto prepared = sandbox.prepare();
  json report = prepared ? json{{"ok", true}, {"warning", *prepared}}
                         : json{{"ok", false}, {"error", prepared.error().message}};
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

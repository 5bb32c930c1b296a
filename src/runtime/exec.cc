#include "runtime/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/oci_spec.h"
#include "common/sys.h"
#include "host/terminal.h"
#include "runtime/shim_client.h"

namespace vessel::runtime {

using nlohmann::json;

namespace {

void send_window_size(int socket, int terminal) {
  winsize size{};
  if (terminal >= 0 && ::ioctl(terminal, TIOCGWINSZ, &size) == 0 && size.ws_row > 0)
    (void)sys::write_all(
        socket, json{{"op", "resize"}, {"rows", size.ws_row}, {"cols", size.ws_col}}.dump() + "\n");
}

struct Relay {
  UniqueFd socket;
  UniqueFd terminal;  // the pty slave, with a terminal
  std::string buffer;
};

// Connects to the shim and sends `line` with the stdio; returns once the shim accepted it.
Result<Relay> start_relay(const std::string& socket, json line, bool terminal,
                          const std::string& console_socket, json* answer = nullptr) {
  Relay relay;
  relay.socket = TRY(sys::unix_connect(socket));
  std::vector<int> fds = {0, 1, 2};
  if (terminal) {
    relay.terminal = TRY(open_console_for(console_socket));
    fds = {relay.terminal.get()};
  }
  line["terminal"] = terminal;
  TRY(sys::send_with_fds(relay.socket.get(), line.dump() + "\n", fds));
  json reply = TRY(read_json_line(relay.socket.get(), relay.buffer, std::chrono::seconds(90)));
  if (!reply.value("ok", false)) return fail(reply.value("error", "exec failed"));
  if (answer) *answer = reply;
  send_window_size(relay.socket.get(), relay.terminal.get());
  return relay;
}

// Forwards signals until the exit code arrives; returns the final answer.
json relay_until_exit(Relay& relay) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH})
    sigaddset(&mask, signal);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signals(::signalfd(-1, &mask, SFD_CLOEXEC));
  for (;;) {
    pollfd fds[] = {{relay.socket.get(), POLLIN, 0}, {signals.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return {{"exit_code", 255}};
    if (fds[1].revents) {
      signalfd_siginfo info;
      if (::read(signals.get(), &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGWINCH)
          send_window_size(relay.socket.get(), relay.terminal.get());
        else
          (void)sys::write_all(relay.socket.get(),
                               json{{"op", "signal"}, {"signal", info.ssi_signo}}.dump() + "\n");
      }
    }
    if (fds[0].revents) {
      auto line = read_json_line(relay.socket.get(), relay.buffer);
      // The shim is gone: the VM stopped, and the process with it.
      if (!line) return {{"exit_code", 128 + SIGKILL}};
      if (line->contains("exit_code")) return *line;
    }
  }
}

}  // namespace

Result<int> exec_in_container(const StateStore& store, const ExecRequest& request) {
  ContainerState state = TRY(store.load(request.id));
  Status status = state.effective_status();
  if (status != Status::Running)
    return fail("cannot exec in container \"" + request.id + "\": it is " +
                std::string(status_name(status)) + ", not running");
  json process = json::parse(request.process_json, nullptr, false);
  if (process.is_discarded()) return fail("the exec process is not valid JSON");
  TRY(oci::parse_process(process).map_error(context("exec process")));

  json line = {{"op", "exec"}, {"process", process}};
  if (state.member) line["member"] = state.member;  // a pod member: its sandbox's shim runs it
  const std::string socket = state.shim_socket(store.root());
  bool terminal = process.value("terminal", false);
  if (!request.detach) {
    Relay relay = TRY(start_relay(socket, line, terminal, request.console_socket));
    return relay_until_exit(relay).value("exit_code", 255);
  }
  // conmon waits for the pid in --pid-file: a child of ours that relays, then exits with the code.
  DetachedRelay relay = TRY(spawn_relay(socket, line, terminal, request.console_socket));
  if (!request.pid_file.empty())
    TRY(sys::write_file_atomic(request.pid_file, std::to_string(relay.pid), 0644));
  return 0;
}

Result<DetachedRelay> spawn_relay(const std::string& socket, const json& line, bool terminal,
                                  const std::string& console_socket,
                                  const std::function<void(const json&)>& on_exit) {
  auto ready = TRY(sys::pipe());
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    ready.read.reset();
    json answer;
    auto relay = start_relay(socket, line, terminal, console_socket, &answer);
    // The caller's stdio went to the shim with the request (or a terminal stands in for it):
    // held here too, it would stay open for the process's whole life, and containerd's runc
    // shim reads its runtime's output to end of file before it takes a terminal's master.
    if (relay)
      if (auto null = sys::open("/dev/null", O_RDWR))
        for (int fd : {0, 1, 2}) ::dup2(null->get(), fd);
    json report = relay ? json{{"ok", true}, {"answer", answer}}
                        : json{{"ok", false}, {"error", relay.error().message}};
    (void)sys::write_all(ready.write.get(), report.dump());
    ready.write.reset();
    if (!relay) ::_exit(255);
    json exit = relay_until_exit(*relay);
    if (on_exit) on_exit(exit);
    ::_exit(exit.value("exit_code", 255));
  }
  ready.write.reset();
  json report = json::parse(sys::read_to_end(ready.read.get(), 65536).value_or(""), nullptr, false);
  if (!report.is_object() || !report.value("ok", false)) {
    ::waitpid(pid, nullptr, 0);
    return fail(report.is_object() ? report.value("error", "the relay stopped")
                                   : "the relay stopped");
  }
  return DetachedRelay{pid, report["answer"]};
}

}  // namespace vessel::runtime

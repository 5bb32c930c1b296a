#include "runtime/exec.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/oci_spec.h"
#include "common/sys.h"
#include "common/terminal.h"
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

// Connects to the shim and starts the process; returns once it runs.
Result<Relay> start_relay(const StateStore& store, const ExecRequest& request,
                          const json& process) {
  Relay relay;
  relay.socket = TRY(sys::unix_connect(store.dir(request.id) + "/shim.sock"));
  bool terminal = process.value("terminal", false);
  std::vector<int> fds = {0, 1, 2};
  if (terminal) {
    relay.terminal = TRY(open_console_for(request.console_socket));
    fds = {relay.terminal.get()};
  }
  json line = {{"op", "exec"}, {"process", process}, {"terminal", terminal}};
  TRY(sys::send_with_fds(relay.socket.get(), line.dump() + "\n", fds));
  json reply = TRY(read_json_line(relay.socket.get(), relay.buffer, std::chrono::seconds(60)));
  if (!reply.value("ok", false)) return fail(reply.value("error", "exec failed"));
  send_window_size(relay.socket.get(), relay.terminal.get());
  return relay;
}

// Forwards signals until the exit code arrives; returns it.
int relay_until_exit(Relay& relay) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH})
    sigaddset(&mask, signal);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signals(::signalfd(-1, &mask, SFD_CLOEXEC));
  for (;;) {
    pollfd fds[] = {{relay.socket.get(), POLLIN, 0}, {signals.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return 255;
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
      if (!line) return 128 + SIGKILL;  // the container stopped, and the process with it
      if (line->contains("exit_code")) return line->value("exit_code", 255);
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

  if (!request.detach) {
    Relay relay = TRY(start_relay(store, request, process));
    return relay_until_exit(relay);
  }
  // conmon waits for the pid in --pid-file: a child of ours that relays, then exits with the code.
  auto ready = TRY(sys::pipe());
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    ready.read.reset();
    auto relay = start_relay(store, request, process);
    std::string report = relay ? "" : relay.error().message;
    (void)sys::write_all(ready.write.get(), report.empty() ? std::string("ok") : report);
    ready.write.reset();
    ::_exit(relay ? relay_until_exit(*relay) : 255);
  }
  ready.write.reset();
  std::string report = sys::read_to_end(ready.read.get(), 65536).value_or("");
  if (report != "ok") {
    ::waitpid(pid, nullptr, 0);
    return fail(report.empty() ? "the exec relay stopped" : report);
  }
  if (!request.pid_file.empty())
    TRY(sys::write_file_atomic(request.pid_file, std::to_string(pid), 0644));
  return 0;
}

}  // namespace vessel::runtime

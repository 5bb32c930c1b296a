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

using control::Exited;
using control::Reply;
using nlohmann::json;

namespace {

void send_window_size(int socket, int terminal) {
  winsize size{};
  if (terminal >= 0 && ::ioctl(terminal, TIOCGWINSZ, &size) == 0 && size.ws_row > 0)
    (void)sys::write_all(
        socket,
        control::encode(control::RelayMessage(control::relay::Resize{size.ws_row, size.ws_col})));
}

bool wants_terminal(const control::RequestOp& op) {
  if (auto* exec = std::get_if<control::request::Exec>(&op)) return exec->terminal;
  if (auto* member = std::get_if<control::request::CreateMember>(&op)) return member->terminal;
  return false;
}

struct Relay {
  UniqueFd socket;
  UniqueFd terminal;  // the pty slave, with a terminal
  std::string buffer;
};

// Connects to the shim and sends `request` with the stdio; returns once the shim accepted it.
Result<Relay> start_relay(const std::string& socket, const control::Request& request,
                          const std::string& console_socket, Reply* answer = nullptr) {
  Relay relay;
  relay.socket = TRY(sys::unix_connect(socket));
  std::vector<int> fds = {0, 1, 2};
  if (wants_terminal(request.op)) {
    relay.terminal = TRY(open_console_for(console_socket));
    fds = {relay.terminal.get()};
  }
  TRY(sys::send_with_fds(relay.socket.get(), control::encode(request), fds));
  Reply reply = TRY(control::parse_reply(
      TRY(read_line(relay.socket.get(), relay.buffer, std::chrono::seconds(90)))));
  if (reply.error) return fail(*reply.error);
  if (answer) *answer = reply;
  send_window_size(relay.socket.get(), relay.terminal.get());
  return relay;
}

// Forwards signals until the exit code arrives; returns it.
Exited relay_until_exit(Relay& relay) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH})
    sigaddset(&mask, signal);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signals(::signalfd(-1, &mask, SFD_CLOEXEC));
  for (;;) {
    pollfd fds[] = {{relay.socket.get(), POLLIN, 0}, {signals.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return Exited{255, false};
    if (fds[1].revents) {
      signalfd_siginfo info;
      if (::read(signals.get(), &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGWINCH)
          send_window_size(relay.socket.get(), relay.terminal.get());
        else
          (void)sys::write_all(relay.socket.get(),
                               control::encode(control::RelayMessage(
                                   control::relay::Signal{static_cast<int>(info.ssi_signo)})));
      }
    }
    if (fds[0].revents) {
      auto line = read_line(relay.socket.get(), relay.buffer);
      // The shim is gone: the VM stopped, and the process with it.
      if (!line) return Exited{128 + SIGKILL, false};
      if (auto exited = control::parse_exited(*line)) return *exited;
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

  // A pod member's exec is its sandbox's shim's, the member named.
  control::Request exec{control::request::Exec{process, process.value("terminal", false)},
                        state.member};
  const std::string socket = state.shim_socket(store.root());
  if (!request.detach) {
    Relay relay = TRY(start_relay(socket, exec, request.console_socket));
    return relay_until_exit(relay).exit_code;
  }
  // conmon waits for the pid in --pid-file: a child of ours that relays, then exits with the code.
  DetachedRelay relay = TRY(spawn_relay(socket, exec, request.console_socket));
  if (!request.pid_file.empty())
    TRY(sys::write_file_atomic(request.pid_file, std::to_string(relay.pid), 0644));
  return 0;
}

Result<DetachedRelay> spawn_relay(const std::string& socket, const control::Request& request,
                                  const std::string& console_socket,
                                  const std::function<void(const Exited&)>& on_exit) {
  auto ready = TRY(sys::pipe());
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    ready.read.reset();
    Reply answer;
    auto relay = start_relay(socket, request, console_socket, &answer);
    // The caller's stdio went to the shim with the request (or a terminal stands in for it):
    // held here too, it would stay open for the process's whole life, and containerd's runc
    // shim reads its runtime's output to end of file before it takes a terminal's master.
    if (relay)
      if (auto null = sys::open("/dev/null", O_RDWR))
        for (int fd : {0, 1, 2}) ::dup2(null->get(), fd);
    // The shim's answer, or why there is none, goes to the caller as the shim put it.
    (void)sys::write_all(ready.write.get(),
                         control::encode(relay ? answer : Reply::failed(relay.error().message)));
    ready.write.reset();
    if (!relay) ::_exit(255);
    Exited exited = relay_until_exit(*relay);
    if (on_exit) on_exit(exited);
    ::_exit(exited.exit_code);
  }
  ready.write.reset();
  auto report = control::parse_reply(sys::read_to_end(ready.read.get(), 65536).value_or(""));
  if (!report || report->error) {
    ::waitpid(pid, nullptr, 0);
    return fail(report ? *report->error : "the relay stopped");
  }
  return DetachedRelay{pid, *report};
}

}  // namespace vessel::runtime

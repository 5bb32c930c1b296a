#include "agent/server.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "agent/container.h"
#include "agent/network.h"
#include "common/channel/messages.h"
#include "common/channel/stream.h"
#include "common/log.h"

namespace vessel::agent {

namespace {

using channel::Channel;
using channel::FrameType;
using nlohmann::json;

constexpr const char* kRootfsTag = "rootfs";

class Server {
 public:
  Server(UniqueFd channel_fd, UniqueFd signal_fd)
      : m_channel(std::move(channel_fd)), m_signal_fd(std::move(signal_fd)) {}

  Result<void> run() {
    channel::send_message(m_channel, {{"type", "hello"}, {"version", channel::build_version()}});
    while (!m_shutdown) {
      TRY(poll_once());
      maybe_report_exit();
    }
    return {};
  }

 private:
  Result<void> poll_once() {
    std::vector<pollfd> fds;
    fds.push_back(
        {m_channel.fd(), static_cast<short>(POLLIN | (m_channel.wants_write() ? POLLOUT : 0)), 0});
    fds.push_back({m_signal_fd.get(), POLLIN, 0});
    for (auto& sender : m_senders)
      if (sender->wants_read()) fds.push_back({sender->fd(), POLLIN, 0});
    if (m_stdin && m_stdin->wants_write()) fds.push_back({m_stdin->fd(), POLLOUT, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) return {};
      return fail_errno("poll");
    }
    for (const auto& entry : fds) {
      if (!entry.revents) continue;
      if (entry.fd == m_channel.fd()) {
        if (entry.revents & (POLLIN | POLLHUP | POLLERR)) TRY(on_channel_readable());
      } else if (entry.fd == m_signal_fd.get()) {
        reap_children();
      } else if (m_stdin && entry.fd == m_stdin->fd()) {
        TRY(m_stdin->on_writable(m_channel));
      } else {
        for (auto& sender : m_senders)
          if (sender->fd() == entry.fd) TRY(sender->on_readable(m_channel));
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
    switch (frame.type) {
      case FrameType::Control:
        return on_message(TRY(channel::parse_message(frame)));
      case FrameType::Data:
        if (frame.stream == channel::kStdin && m_stdin)
          return m_stdin->on_data(m_channel, std::move(frame.payload));
        return fail(EPROTO,
                    "agent channel: data for unknown stream " + std::to_string(frame.stream));
      case FrameType::Close:
        if (frame.stream == channel::kStdin && m_stdin) m_stdin->on_close();
        return {};
      case FrameType::Credit:
        for (auto& sender : m_senders)
          if (sender->stream() == frame.stream) return sender->on_credit(frame.payload);
        return {};
    }
    return {};
  }

  void reply_error(const std::string& message) {
    channel::send_message(m_channel, {{"type", "error"}, {"message", message}});
  }

  Result<void> on_message(const json& message) {
    const std::string type = message["type"];
    if (type == "create") {
      auto created = create(message);
      if (!created)
        reply_error(created.error().message);
      else
        channel::send_message(m_channel, {{"type", "created"}});
    } else if (type == "start") {
      auto started = m_container ? m_container->start() : fail("no container was created");
      if (!started)
        reply_error(started.error().message);
      else
        channel::send_message(m_channel, {{"type", "started"}});
    } else if (type == "signal") {
      if (m_container && !m_exit_status && message.contains("signal") &&
          message["signal"].is_number_integer())
        (void)m_container->signal(message["signal"].get<int>());
    } else if (type == "resize") {
      if (m_terminal_fd >= 0 && message.contains("rows") && message.contains("cols")) {
        winsize size{};
        size.ws_row = message["rows"].get<unsigned short>();
        size.ws_col = message["cols"].get<unsigned short>();
        ::ioctl(m_terminal_fd, TIOCSWINSZ, &size);
      }
    } else if (type == "shutdown") {
      m_shutdown = true;
    } else {
      reply_error("unknown request " + type);
    }
    return {};
  }

  Result<void> create(const json& message) {
    if (m_container) return fail("a container was created already");
    if (!message.contains("spec")) return fail("create without a spec");
    oci::Spec spec = TRY(oci::parse_spec(message["spec"]));
    ContainerStdio stdio;
    TRY(configure_network(message.value("network", nlohmann::json::object()))
            .map_error(context("network")));
    m_container = std::make_unique<Container>(TRY(Container::create(
        spec, kRootfsTag, message.value("binds", nlohmann::json::array()), stdio)));
    if (spec.process.terminal) m_terminal_fd = stdio.stdin_write.get();
    m_stdin =
        std::make_unique<channel::StreamReceiver>(channel::kStdin, std::move(stdio.stdin_write));
    m_senders.push_back(
        std::make_unique<channel::StreamSender>(channel::kStdout, std::move(stdio.stdout_read)));
    if (stdio.stderr_read)
      m_senders.push_back(
          std::make_unique<channel::StreamSender>(channel::kStderr, std::move(stdio.stderr_read)));
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
      if (m_container && pid == m_container->pid()) m_exit_status = status;
    }
  }

  // The exit goes out only after the output streams reached end of file, so the shim has every
  // byte the process wrote before it learns the process is gone.
  void maybe_report_exit() {
    if (!m_exit_status || m_exit_reported) return;
    for (auto& sender : m_senders)
      if (sender->open()) return;
    json message = {{"type", "exit"}};
    if (WIFSIGNALED(*m_exit_status))
      message["signal"] = WTERMSIG(*m_exit_status);
    else
      message["exit_code"] = WEXITSTATUS(*m_exit_status);
    channel::send_message(m_channel, message);
    m_exit_reported = true;
  }

  Channel m_channel;
  UniqueFd m_signal_fd;
  std::unique_ptr<Container> m_container;
  std::unique_ptr<channel::StreamReceiver> m_stdin;
  std::vector<std::unique_ptr<channel::StreamSender>> m_senders;
  int m_terminal_fd = -1;
  std::optional<int> m_exit_status;
  bool m_exit_reported = false;
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
  auto result = server.run();
  return result;
}

}  // namespace vessel::agent

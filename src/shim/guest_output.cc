#include "shim/guest_output.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "common/channel/messages.h"
#include "common/sys.h"

namespace vessel::shim {

namespace {
constexpr size_t kTail = 16384;      // a panic with its stack trace
constexpr double kBurstSeconds = 4;  // a boot's worth of messages goes through at once
}  // namespace

GuestOutput::GuestOutput(UniqueFd source, CappedFile sink, size_t bytes_per_second)
    : m_source(std::move(source)),
      m_sink(std::move(sink)),
      m_rate(bytes_per_second),
      m_budget(bytes_per_second * kBurstSeconds),
      m_refilled(Clock::now()) {
  if (m_source) (void)sys::set_nonblocking(m_source.get());
}

void GuestOutput::refill() {
  auto now = Clock::now();
  double seconds = std::chrono::duration<double>(now - m_refilled).count();
  m_budget = std::min(m_rate * kBurstSeconds, m_budget + seconds * m_rate);
  m_refilled = now;
}

bool GuestOutput::wants_read() const {
  if (!m_source) return false;
  double seconds = std::chrono::duration<double>(Clock::now() - m_refilled).count();
  return m_budget + seconds * m_rate >= 1;
}

std::chrono::milliseconds GuestOutput::ready_in() const {
  if (!m_source || wants_read()) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(1 + static_cast<long>(1000.0 / std::max<size_t>(m_rate, 1)));
}

void GuestOutput::on_readable() {
  refill();
  char buffer[65536];
  size_t want = std::min(sizeof buffer, static_cast<size_t>(std::max(m_budget, 0.0)));
  if (want == 0) return;
  ssize_t n = ::read(m_source.get(), buffer, want);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    m_source.reset();
    return;
  }
  m_budget -= n;
  std::string_view data(buffer, n);
  m_sink.write(data);
  m_tail.append(data);
  if (m_tail.size() > kTail) m_tail.erase(0, m_tail.size() - kTail);
}

void GuestOutput::drain() {
  for (int i = 0; i < 16 && m_source; ++i) {
    pollfd entry{m_source.get(), POLLIN, 0};
    if (::poll(&entry, 1, 0) <= 0) return;
    m_budget = std::max(m_budget, 65536.0);
    on_readable();
  }
}

std::string GuestOutput::last_line() const {
  std::string text = m_tail;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  size_t start = text.rfind('\n');
  return channel::printable(start == std::string::npos ? text : text.substr(start + 1), 512);
}

std::vector<std::string> GuestOutput::last_lines(size_t count) const {
  std::vector<std::string> lines;
  size_t end = m_tail.size();
  while (end > 0 && lines.size() < count) {
    size_t start = m_tail.rfind('\n', end - 1);
    size_t from = start == std::string::npos ? 0 : start + 1;
    std::string line = m_tail.substr(from, end - from);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.insert(lines.begin(), channel::printable(line, 256));
    if (start == std::string::npos) break;
    end = start;
  }
  return lines;
}

std::string describe_early_stop(const GuestOutput& console_output, const GuestOutput& qemu_log,
                                std::optional<int> wait_status) {
  // A panic's stack trace follows its line: show the lines that led to it instead.
  std::vector<std::string> console = console_output.last_lines(64);
  std::string panic;
  size_t shown_end = console.size();
  for (size_t i = 0; i < console.size(); ++i)
    if (size_t at = console[i].find("Kernel panic - not syncing: "); at != std::string::npos) {
      panic = console[i].substr(at);
      shown_end = i + 1;
    }
  console.erase(console.begin() + static_cast<long>(shown_end), console.end());
  if (console.size() > 4) console.erase(console.begin(), console.end() - 4);
  std::string message;
  if (panic.find("Attempted to kill init") != std::string::npos)
    message =
        "vessel-agent, the guest's init, exited before the container was created (" + panic + ")";
  else if (!panic.empty())
    message = "the guest kernel panicked while starting (" + panic + ")";
  else {
    // QEMU's own words, without its program name: "unsupported machine type | Use -machine
    // help to list supported machines".
    std::string why;
    for (auto line : qemu_log.last_lines(2)) {
      if (size_t at = line.find(": "); line.starts_with("qemu-system") && at != std::string::npos)
        line = line.substr(at + 2);
      why += (why.empty() ? "" : " | ") + line;
    }
    if (why.empty() && wait_status && WIFSIGNALED(*wait_status))
      why = std::string("killed by SIG") + sigabbrev_np(WTERMSIG(*wait_status));
    message = "the VM stopped while starting" + (why.empty() ? "" : " (QEMU: " + why + ")");
  }
  if (!console.empty()) {
    message += "; the console's last lines: ";
    for (size_t i = 0; i < console.size(); ++i) {
      std::string line = console[i];
      // The kernel's "[    0.231906] " timestamps say nothing to the user.
      if (size_t close = line.find("] "); line.starts_with("[") && close < 16)
        line = line.substr(close + 2);
      message += (i ? " | " : "") + line;
    }
  }
  return message;
}

}  // namespace vessel::shim

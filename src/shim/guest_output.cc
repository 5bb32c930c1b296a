#include "shim/guest_output.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "common/channel/messages.h"
#include "common/sys.h"

namespace vessel::shim {

namespace {
constexpr size_t kTail = 16384;  // a panic with its stack trace
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

}  // namespace vessel::shim

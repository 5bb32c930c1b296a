#include "agent/held_signals.h"

#include <signal.h>

#include <cstdlib>

#include "common/sys.h"

namespace vessel::agent {

namespace {

// Whether the process catches or ignores `signal` (or is gone: nothing to wait for).
bool handles(pid_t pid, int signal) {
  auto status = sys::read_file("/proc/" + std::to_string(pid) + "/status", 8192);
  if (!status) return true;
  uint64_t mask = 0;
  for (const char* key : {"\nSigCgt:\t", "\nSigIgn:\t"}) {
    size_t at = status->find(key);
    if (at != std::string::npos) mask |= std::strtoull(status->c_str() + at + 9, nullptr, 16);
  }
  return mask >> (signal - 1) & 1;
}

}  // namespace

void HeldSignals::send(uint32_t id, pid_t pid, int signal) {
  auto now = Clock::now();
  auto started = m_started_at.find(id);  // only inits have a start time
  if (started != m_started_at.end() && now < started->second + kSettle && signal != SIGKILL &&
      signal != SIGSTOP && signal > 0 && signal < 65 && !handles(pid, signal)) {
    m_held.push_back({pid, signal, started->second + kSettle});
    return;
  }
  ::kill(pid, signal);
}

void HeldSignals::release() {
  auto now = Clock::now();
  std::erase_if(m_held, [&](const Held& held) {
    if (now < held.until && !handles(held.pid, held.signal)) return false;
    ::kill(held.pid, held.signal);
    return true;
  });
}

}  // namespace vessel::agent

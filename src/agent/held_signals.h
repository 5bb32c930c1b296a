// Signals for a container's init just after its start. The init is PID 1 of its namespace: a
// signal it has no handler for yet is dropped, and under emulation a shell takes tens of
// milliseconds to reach its `trap`, a cold first start read over 9p more than a second
// (microseconds natively): Podman's `stop` right after `run` would lose its TERM. So such a
// signal waits, at most kSettle after start, until the program catches or ignores it; then it
// is delivered (and dropped as under runc if the program never asked for it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <vector>

namespace vessel::agent {

class HeldSignals {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kSettle = std::chrono::seconds(3);

  // Container `init` (its init's process id) was started now.
  void started(uint32_t init) { m_started_at[init] = Clock::now(); }
  void forget(uint32_t init) { m_started_at.erase(init); }
  // Sends `signal` to process `id` (pid `pid`), or holds it while that is an init settling.
  void send(uint32_t id, pid_t pid, int signal);
  // Delivers the held signals whose program is ready for them or whose time is up.
  void release();
  // How long poll may sleep for their sake: -1 for as long as it likes.
  int timeout_ms() const { return m_held.empty() ? -1 : 10; }

 private:
  struct Held {
    pid_t pid;
    int signal;
    Clock::time_point until;
  };

  std::map<uint32_t, Clock::time_point> m_started_at;  // by init id
  std::vector<Held> m_held;
};

}  // namespace vessel::agent

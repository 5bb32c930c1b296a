// Output the guest can make as long as it likes (its serial console, and QEMU's own messages,
// which the guest can provoke), kept in a CappedFile in the state directory. Reading is rate
// limited: past the budget the descriptor is left unread, so the writer waits, not the host's
// disk, CPU or the shim's memory.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/capped_file.h"
#include "common/unique_fd.h"

namespace vessel::shim {

class GuestOutput {
 public:
  using Clock = std::chrono::steady_clock;

  GuestOutput() = default;
  GuestOutput(UniqueFd source, CappedFile sink, size_t bytes_per_second);

  int fd() const { return m_source.get(); }
  // Whether to poll fd() now; else ready_in() says when the budget allows more.
  bool wants_read() const;
  std::chrono::milliseconds ready_in() const;
  void on_readable();
  // Reads what is there without waiting (after the writer stopped).
  void drain();
  // The last complete line written, for error messages.
  std::string last_line() const;
  // Up to `count` of the last non-empty lines, printable, oldest first.
  std::vector<std::string> last_lines(size_t count) const;

 private:
  void refill();

  UniqueFd m_source;
  CappedFile m_sink;
  size_t m_rate = 0;
  double m_budget = 0;
  Clock::time_point m_refilled;
  std::string m_tail;  // the newest bytes, enough for one line
};

// Why a VM stopped before its container was created, from what the guest and QEMU said last: a
// kernel panic is named as one ("Attempted to kill init": the agent, the guest's init, exited),
// else QEMU's own last words; then the console's last lines (those that led to a panic).
std::string describe_early_stop(const GuestOutput& console, const GuestOutput& qemu_log,
                                std::optional<int> wait_status);

}  // namespace vessel::shim

// The stdio the shim relays between the host and the guest: for each process (the container's
// init is 0, exec'd processes 1, 2, ...) a sender for its stdin and receivers for its stdout and
// stderr, matched to channel frames by stream id (channel::stream_of).
#pragma once

#include <poll.h>

#include <memory>
#include <vector>

#include "common/channel/stream.h"

namespace vessel::shim {

class StdioRelay {
 public:
  // With a terminal, `in` and `out` are the same pty slave and `err` is invalid.
  void add(uint32_t process, UniqueFd in, UniqueFd out, UniqueFd err);
  // With Input::Paused only the outputs are polled: nothing is read that would queue more frames.
  enum class Input { Read, Paused };
  void add_poll_fds(std::vector<pollfd>& fds, Input input = Input::Read) const;
  // Reads or writes whichever stream owns `fd`; false if none does.
  Result<bool> on_ready(int fd, channel::Channel& channel);
  // Data, Close and Credit frames.
  Result<void> on_frame(channel::Frame& frame, channel::Channel& channel);
  // Whether everything `process` wrote has been written out here.
  bool written(uint32_t process) const;
  // Stops sending the process's stdin (it is gone, or about to be).
  void close_input(uint32_t process, channel::Channel& channel);
  void remove(uint32_t process, channel::Channel& channel);

 private:
  std::vector<std::unique_ptr<channel::StreamSender>> m_senders;
  std::vector<std::unique_ptr<channel::StreamReceiver>> m_receivers;
};

}  // namespace vessel::shim

#include "shim/stdio_relay.h"

#include "common/channel/messages.h"

namespace vessel::shim {

using channel::process_of;
using channel::stream_of;

void StdioRelay::add(uint32_t process, UniqueFd in, UniqueFd out, UniqueFd err) {
  m_senders.push_back(
      std::make_unique<channel::StreamSender>(stream_of(process, channel::kStdin), std::move(in)));
  m_receivers.push_back(std::make_unique<channel::StreamReceiver>(
      stream_of(process, channel::kStdout), std::move(out)));
  if (err)
    m_receivers.push_back(std::make_unique<channel::StreamReceiver>(
        stream_of(process, channel::kStderr), std::move(err)));
}

void StdioRelay::add_poll_fds(std::vector<pollfd>& fds, Input input) const {
  for (const auto& sender : m_senders)
    if (input == Input::Read && sender->wants_read()) fds.push_back({sender->fd(), POLLIN, 0});
  for (const auto& receiver : m_receivers)
    if (receiver->wants_write()) fds.push_back({receiver->fd(), POLLOUT, 0});
}

Result<bool> StdioRelay::on_ready(int fd, channel::Channel& channel) {
  bool found = false;
  for (auto& sender : m_senders)
    if (sender->fd() == fd) TRY(sender->on_readable(channel)), found = true;
  for (auto& receiver : m_receivers)
    if (receiver->fd() == fd) TRY(receiver->on_writable(channel)), found = true;
  return found;
}

Result<void> StdioRelay::on_frame(channel::Frame& frame, channel::Channel& channel) {
  for (auto& receiver : m_receivers) {
    if (receiver->stream() != frame.stream) continue;
    if (frame.type == channel::FrameType::Data)
      return receiver->on_data(channel, std::move(frame.payload));
    if (frame.type == channel::FrameType::Close) receiver->on_close();
    return {};
  }
  for (auto& sender : m_senders)
    if (sender->stream() == frame.stream && frame.type == channel::FrameType::Credit)
      return sender->on_credit(frame.payload);
  return {};  // a stream that is gone already
}

bool StdioRelay::written(uint32_t process) const {
  for (const auto& receiver : m_receivers)
    if (process_of(receiver->stream()) == process && !receiver->finished()) return false;
  return true;
}

void StdioRelay::close_input(uint32_t process, channel::Channel& channel) {
  for (auto& sender : m_senders)
    if (process_of(sender->stream()) == process) sender->close(channel);
}

void StdioRelay::remove(uint32_t process, channel::Channel& channel) {
  close_input(process, channel);
  std::erase_if(m_senders,
                [&](const auto& sender) { return process_of(sender->stream()) == process; });
  std::erase_if(m_receivers,
                [&](const auto& receiver) { return process_of(receiver->stream()) == process; });
}

}  // namespace vessel::shim

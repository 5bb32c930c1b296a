#include "agent/process_table.h"

#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/channel/messages.h"

namespace vessel::agent {

Process::Process(uint32_t process_id, uint32_t container_id, pid_t process_pid,
                 ContainerStdio& stdio)
    : id(process_id), container(container_id), pid(process_pid) {
  if (stdio.stdout_read && stdio.stdin_write && !stdio.stderr_read)
    terminal_fd = stdio.stdin_write.get();
  stdin = std::make_unique<channel::StreamReceiver>(channel::stream_of(id, channel::kStdin),
                                                    std::move(stdio.stdin_write));
  outputs.push_back(std::make_unique<channel::StreamSender>(
      channel::stream_of(id, channel::kStdout), std::move(stdio.stdout_read),
      channel::kPortWriteSize));
  if (stdio.stderr_read)
    outputs.push_back(std::make_unique<channel::StreamSender>(
        channel::stream_of(id, channel::kStderr), std::move(stdio.stderr_read),
        channel::kPortWriteSize));
}

bool Process::drained() const {
  for (const auto& output : outputs)
    if (output->open()) return false;
  return true;
}

Process* ProcessTable::find(uint32_t id) {
  auto it = m_processes.find(id);
  return it == m_processes.end() ? nullptr : &it->second;
}

bool ProcessTable::running(uint32_t id) const {
  auto it = m_processes.find(id);
  return it != m_processes.end() && !it->second.status;
}

Result<void> ProcessTable::check_new(uint32_t id) const {
  if (id == 0 || id > channel::kMaxProcessId || m_processes.count(id)) return fail("bad id");
  if (m_processes.size() >= kMaxProcesses) return fail("too many processes");
  return {};
}

Process& ProcessTable::add(uint32_t id, uint32_t container, pid_t pid, ContainerStdio& stdio) {
  return m_processes.try_emplace(id, id, container, pid, stdio).first->second;
}

void ProcessTable::add_poll_fds(std::vector<pollfd>& fds) const {
  for (const auto& [id, process] : m_processes) {
    for (const auto& output : process.outputs)
      if (output->wants_read()) fds.push_back({output->fd(), POLLIN, 0});
    if (process.stdin->wants_write()) fds.push_back({process.stdin->fd(), POLLOUT, 0});
  }
}

Result<bool> ProcessTable::on_ready(int fd, channel::Channel& channel) {
  for (auto& [id, process] : m_processes) {
    for (auto& output : process.outputs)
      if (output->fd() == fd) return TRY(output->on_readable(channel)), true;
    if (process.stdin->fd() == fd) return TRY(process.stdin->on_writable(channel)), true;
  }
  return false;
}

Result<void> ProcessTable::on_frame(channel::Frame& frame, channel::Channel& channel) {
  Process* process = find(channel::process_of(frame.stream));
  if (!process) return {};  // a process that is gone already: nothing to deliver to
  switch (frame.type) {
    case channel::FrameType::Data:
      if (frame.stream != process->stdin->stream())
        return fail(EPROTO,
                    "agent channel: data for output stream " + std::to_string(frame.stream));
      return process->stdin->on_data(channel, std::move(frame.payload));
    case channel::FrameType::Close:
      if (frame.stream == process->stdin->stream()) process->stdin->on_close();
      return {};
    case channel::FrameType::Credit:
      for (auto& output : process->outputs)
        if (output->stream() == frame.stream) return output->on_credit(frame.payload);
      return {};
    case channel::FrameType::Control:
      break;
  }
  return {};
}

void ProcessTable::reap(int signal_fd) {
  signalfd_siginfo info;
  while (::read(signal_fd, &info, sizeof info) == sizeof info) {
  }
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (auto& [id, process] : m_processes)
      if (process.pid == pid) process.status = status;
  }
}

std::vector<uint32_t> ProcessTable::draining() const {
  std::vector<uint32_t> ids;
  for (const auto& [id, process] : m_processes)
    if (process.status && !process.drained()) ids.push_back(id);
  return ids;
}

std::vector<uint32_t> ProcessTable::finished() const {
  std::vector<uint32_t> ids;
  for (const auto& [id, process] : m_processes)
    if (process.status && !process.reported && process.drained()) ids.push_back(id);
  return ids;
}

}  // namespace vessel::agent

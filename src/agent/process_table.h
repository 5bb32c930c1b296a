// The processes the shim follows: each container's init (the VM's container is id 0, a pod
// member the id the shim gave it) and each exec'd process, with their stdio relayed on the
// channel's streams channel::stream_of(id, ...) with flow control, and their wait status once
// reaped. The agent is PID 1: every child is reaped here, followed or not.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "agent/container.h"
#include "common/channel/stream.h"

namespace vessel::agent {

struct Process {
  uint32_t id = 0;
  uint32_t container = 0;  // the id of the container's init it belongs to
  pid_t pid = -1;
  std::unique_ptr<channel::StreamReceiver> stdin;
  std::vector<std::unique_ptr<channel::StreamSender>> outputs;
  int terminal_fd = -1;  // the pty master, when it has a terminal
  std::optional<int> status;
  bool reported = false;

  Process(uint32_t process_id, uint32_t container_id, pid_t process_pid, ContainerStdio& stdio);
  // Every byte it wrote was sent: its output streams reached end of file.
  bool drained() const;
};

class ProcessTable {
 public:
  // Bounded: every exec holds three streams and a process in the guest.
  static constexpr size_t kMaxProcesses = 1024;

  Process* find(uint32_t id);
  // Not yet reaped.
  bool running(uint32_t id) const;
  // Why a process cannot be added as `id` (taken, out of range, too many), or nothing.
  Result<void> check_new(uint32_t id) const;
  Process& add(uint32_t id, uint32_t container, pid_t pid, ContainerStdio& stdio);
  void erase(uint32_t id) { m_processes.erase(id); }

  void add_poll_fds(std::vector<pollfd>& fds) const;
  // An output readable or a stdin writable; false if `fd` is no process's.
  Result<bool> on_ready(int fd, channel::Channel& channel);
  // A Data, Close or Credit frame for a process's stream; dropped if the process is gone.
  Result<void> on_frame(channel::Frame& frame, channel::Channel& channel);
  // Drains the SIGCHLD signalfd and reaps every child that ended.
  void reap(int signal_fd);

  // Reaped but with output still to send / reaped, drained and not yet reported.
  std::vector<uint32_t> draining() const;
  std::vector<uint32_t> finished() const;

 private:
  std::map<uint32_t, Process> m_processes;
};

}  // namespace vessel::agent

// The exec sessions of one sandbox: each `vessel exec` relay (the process whose pid conmon
// watches) hands the shim its stdio and keeps its connection open; the shim starts the process in
// the guest, relays its streams, forwards the relay's signals and window sizes, and sends the
// exit code back once the output is written (host/control_messages.h). A pod member is such a
// session too: its relay is the member's host process (runtime/pod.h), and the agent creates a
// container instead of exec'ing a process. Bounded: at most kMaxExecs sessions, relay lines of
// at most 64 KiB, and 10 s for the agent to start a process (60 s to create a member).
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "common/channel/agent_messages.h"
#include "common/channel/host_messages.h"
#include "common/unique_fd.h"
#include "host/control_messages.h"
#include "shim/stdio_relay.h"

namespace vessel::shim {

class ExecSessions {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxExecs = 256;
  static constexpr auto kStartTimeout = std::chrono::seconds(10);   // an exec
  static constexpr auto kCreateTimeout = std::chrono::seconds(60);  // a pod member

  ExecSessions(StdioRelay& stdio, channel::Channel& channel) : m_stdio(stdio), m_channel(channel) {}

  // An exec with the relay's stdio (three descriptors, or one pty slave). A refusal is answered
  // on `client` at once. `member`: the pod member to exec in (its init's id), or 0 for the
  // sandbox's container.
  void start(UniqueFd client, const control::request::Exec& exec, std::vector<UniqueFd> fds,
             bool container_running, uint32_t member);
  // A pod member with its stdio; `seccomp` is its compiled profile. Answered with the member's
  // id once created.
  void create_member(UniqueFd client, const control::request::CreateMember& create,
                     std::vector<UniqueFd> fds, bool container_running, const std::string& seccomp);
  // The agent started process `id` (an exec, or a member it created).
  void on_started(uint32_t id);
  // It could not: false if `id` is no session's.
  bool on_failed(uint32_t id, const std::string& why);
  void on_exit(const channel::from_agent::Exit& exit);
  void add_poll_fds(std::vector<pollfd>& fds) const;
  // A relay's descriptor is readable: its lines, or its end. False if `fd` is not a relay's.
  bool on_readable(int fd);
  // Ends the sessions whose process the agent did not start in time.
  void expire(Clock::time_point now);
  // Sends each finished process's code to its relay once its output has been written out.
  void finish();
  std::optional<Clock::time_point> next_deadline() const;

 private:
  struct Session {
    UniqueFd client;
    std::string request;  // a partial line from the relay
    std::optional<int> exit_code;
    std::optional<Clock::time_point> start_deadline;  // until the agent answers exec_started
    bool member = false;                              // a pod member (answered on created)
    bool oom_killed = false;
  };

  // Checks a request, registers its stdio and sends the agent `message(id)` for the new id.
  void open(UniqueFd client, bool terminal, std::vector<UniqueFd> fds, bool container_running,
            bool member, const std::function<channel::HostMessage(uint32_t)>& message);
  void on_lines(uint32_t id, Session& session);
  // Forgets the session's streams and closes the relay's connection (which ends the relay).
  void end(uint32_t id);

  StdioRelay& m_stdio;
  channel::Channel& m_channel;
  std::map<uint32_t, Session> m_sessions;
  uint32_t m_next_id = 1;
};

}  // namespace vessel::shim

// What the sandbox's control clients ask (host/control_messages.h), one handler per request.
// Each handler sees whom the request concerns: the VM's own container or a pod member (member
// != 0), so no branch depends on another's order; what needs the agent's answer waits in
// PendingAnswers.
#pragma once

#include <chrono>
#include <optional>

#include "shim/control.h"
#include "shim/exec_sessions.h"
#include "shim/guest.h"
#include "shim/pending.h"

namespace vessel::shim {

// What the requests change of the sandbox's run, and read.
struct RunState {
  std::optional<int> exit_status;  // the container's, once the agent reported its exit
  bool paused = false;             // the whole VM stopped
  // After SIGKILL: when the VM stops whatever the guest does.
  std::optional<std::chrono::steady_clock::time_point> kill_deadline;
};

class Requests {
 public:
  Requests(Guest& guest, ExecSessions& execs, PendingAnswers& pending, RunState& state)
      : m_guest(guest), m_execs(execs), m_pending(pending), m_state(state) {}

  void on(ControlRequest& request);

 private:
  // Each answers `client`, at once or once the agent has (`member`: 0 or a pod member's id).
  void handle(const control::request::Start& start, uint32_t member, ControlRequest& client);
  void handle(const control::request::Kill& kill, uint32_t member, ControlRequest& client);
  void handle(const control::request::Pause&, uint32_t member, ControlRequest& client);
  void handle(const control::request::Resume&, uint32_t member, ControlRequest& client);
  void handle(const control::request::Update& update, uint32_t member, ControlRequest& client);
  void handle(const control::request::ListProcesses&, uint32_t member, ControlRequest& client);
  void handle(const control::request::Exec& exec, uint32_t member, ControlRequest& client);
  void handle(const control::request::CreateMember& create, uint32_t member,
              ControlRequest& client);
  void handle(const channel::Unknown& unknown, uint32_t member, ControlRequest& client);

  // The whole VM stopped or resumed (the container's); a member's cgroup frozen or thawed.
  void pause(bool paused, uint32_t member, ControlRequest& client);
  // One question to the agent at a time (update, ps, a member's pause or resume).
  void ask_agent(std::string_view what, const channel::HostMessage& question,
                 ControlRequest& client);

  Guest& m_guest;
  ExecSessions& m_execs;
  PendingAnswers& m_pending;
  RunState& m_state;
};

}  // namespace vessel::shim

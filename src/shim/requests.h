// What the sandbox's control clients ask (shim/control.h: one JSON line each), routed by whom it
// concerns: the VM's own container or a pod member (each names itself with "member"), each op
// one branch; what needs the agent's answer waits in PendingAnswers.
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
  // start, kill, pause, resume, update, ps, and "member", which creates a pod member here.
  void on_container(ControlRequest& request);
  // start, kill, pause and resume (its cgroup frozen in the guest), update and ps of a member.
  void on_member(ControlRequest& request);
  void create_member(ControlRequest& request);
  // One question to the agent at a time (update, ps, a member's pause or resume).
  void ask_agent(ControlRequest& request, uint32_t container);

  Guest& m_guest;
  ExecSessions& m_execs;
  PendingAnswers& m_pending;
  RunState& m_state;
};

}  // namespace vessel::shim

// The control clients waiting on an answer from the agent: the container's start, each pod
// member's start, and the one question (update, ps, a member's pause) asked at a time; each
// answered when the agent replies or its deadline passes.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "common/channel/agent_messages.h"
#include "common/unique_fd.h"
#include "host/control_messages.h"

namespace vessel::shim {

class PendingAnswers {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kStartTimeout = std::chrono::seconds(30);
  static constexpr auto kQueryTimeout = std::chrono::seconds(10);  // update, ps

  // The container's start (container 0) or a member's, its client taken: false (and the client
  // left) when the shim is busy with as many as it keeps, or with this one's already.
  bool start(uint32_t container, UniqueFd& client);
  // A question named `what`, its client taken: false (and the client left) when another waits.
  bool ask(const std::string& what, UniqueFd& client);
  const std::string& asked() const { return m_query; }

  void on_started(uint32_t container);
  // False when no start of `container` was waiting.
  bool on_failed(uint32_t container, const std::string& why);
  void on_answer(const channel::from_agent::Answer& answer);

  // Answers what waited too long. True when the container's own start did: the VM goes.
  bool expire(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;

 private:
  void answer_start(uint32_t container, const control::Reply& reply);

  std::map<uint32_t, UniqueFd> m_starts;  // by container: 0, or a pod member's id
  std::optional<Clock::time_point> m_start_deadline;
  std::string m_query;
  UniqueFd m_query_client;
  std::optional<Clock::time_point> m_query_deadline;
};

}  // namespace vessel::shim

#include "shim/pending.h"

#include "common/log.h"
#include "shim/control.h"

namespace vessel::shim {

using control::Reply;

bool PendingAnswers::start(uint32_t container, UniqueFd& client) {
  if (m_starts.size() >= ControlSocket::kMaxClients || m_starts.count(container)) return false;
  m_starts[container] = std::move(client);
  if (container == 0) m_start_deadline = Clock::now() + kStartTimeout;
  return true;
}

bool PendingAnswers::ask(const std::string& what, UniqueFd& client) {
  if (m_query_client) return false;
  m_query = what;
  m_query_client = std::move(client);
  m_query_deadline = Clock::now() + kQueryTimeout;
  return true;
}

void PendingAnswers::answer_start(uint32_t container, const Reply& reply) {
  if (container == 0) m_start_deadline.reset();
  auto it = m_starts.find(container);
  if (it == m_starts.end()) return;
  respond(it->second, reply);
  m_starts.erase(it);
}

void PendingAnswers::on_started(uint32_t container) { answer_start(container, Reply{}); }

bool PendingAnswers::on_failed(uint32_t container, const std::string& why) {
  if (!m_starts.count(container)) return false;
  answer_start(container, Reply::failed(why.empty() ? "start failed" : why));
  return true;
}

void PendingAnswers::on_answer(const channel::from_agent::Answer& answer) {
  m_query_deadline.reset();
  if (!m_query_client) return;
  Reply reply{answer.error, 0, answer.processes};
  if (reply.error && reply.error->empty()) reply.error = m_query + " failed";
  respond(m_query_client, reply);
}

bool PendingAnswers::expire(Clock::time_point now) {
  if (m_query_deadline && now >= *m_query_deadline) {
    m_query_deadline.reset();
    if (m_query_client)
      respond(m_query_client, Reply::failed("the agent did not answer the " + m_query + " within " +
                                            std::to_string(kQueryTimeout.count()) + " s"));
  }
  if (!m_start_deadline || now < *m_start_deadline) return false;
  std::string error = "the agent did not start the container within " +
                      std::to_string(kStartTimeout.count()) + " s";
  log::error(error + ": stopping the VM");
  answer_start(0, Reply::failed(error));
  return true;
}

std::optional<PendingAnswers::Clock::time_point> PendingAnswers::next_deadline() const {
  if (m_start_deadline && (!m_query_deadline || *m_start_deadline < *m_query_deadline))
    return m_start_deadline;
  return m_query_deadline;
}

}  // namespace vessel::shim

#include "shim/exec_sessions.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "common/sys.h"

namespace vessel::shim {

using nlohmann::json;

namespace {
constexpr size_t kMaxRequest = 65536;

// A request's field as it came (null when absent); its type is checked where it is used.
json field(const json& request, const char* key) {
  return request.contains(key) ? request[key] : json();
}
}  // namespace

int exit_status(const channel::AgentMessage& message) {
  return message.signal ? 128 + *message.signal : message.exit_code.value_or(255);
}

void ExecSessions::answer(const Session& session, const json& reply) {
  (void)sys::write_all(session.client.get(), reply.dump() + "\n");
}

void ExecSessions::start(UniqueFd client, const json& request, std::vector<UniqueFd> fds,
                         bool container_running, uint32_t member) {
  json message = {{"type", "exec"}, {"process", field(request, "process")}};
  if (member) message["container"] = member;
  open(std::move(client), request, std::move(fds), container_running, message, kStartTimeout);
}

void ExecSessions::create_member(UniqueFd client, const json& request, std::vector<UniqueFd> fds,
                                 bool container_running, const std::string& seccomp) {
  json message = {{"type", "create"},
                  {"spec", field(request, "spec")},
                  {"binds", field(request, "binds")},
                  {"root", field(request, "root")},
                  {"seccomp", seccomp}};
  open(std::move(client), request, std::move(fds), container_running, message,
       std::chrono::seconds(60));
}

void ExecSessions::open(UniqueFd client, const json& request, std::vector<UniqueFd> fds,
                        bool container_running, json message, Clock::duration timeout) {
  bool terminal = request.contains("terminal") && request["terminal"].is_boolean() &&
                  request["terminal"].get<bool>();
  bool member = message["type"] == "create";
  bool well_formed = member ? message["spec"].is_object() && message["root"].is_string() &&
                                  message["binds"].is_array()
                            : message["process"].is_object();
  std::string error = !container_running               ? "the container is not running"
                      : m_sessions.size() >= kMaxExecs ? "too many exec sessions"
                      : fds.size() != (terminal ? 1u : 3u) || !well_formed ? "bad exec request"
                                                                           : "";
  if (!error.empty()) {
    (void)sys::write_all(client.get(), json{{"ok", false}, {"error", error}}.dump() + "\n");
    return;
  }
  uint32_t id = m_next_id++;
  if (terminal) {
    // The input is a second descriptor for the slave: made before fds[0] is moved away.
    UniqueFd input(::fcntl(fds[0].get(), F_DUPFD_CLOEXEC, 0));
    m_stdio.add(id, std::move(input), std::move(fds[0]), UniqueFd());
  } else {
    m_stdio.add(id, std::move(fds[0]), std::move(fds[1]), std::move(fds[2]));
  }
  message["exec"] = id;
  channel::send_message(m_channel, message);
  m_sessions[id] = Session{std::move(client), "", std::nullopt, Clock::now() + timeout, member};
}

void ExecSessions::on_message(uint32_t id, const channel::AgentMessage& message) {
  auto it = m_sessions.find(id);
  if (it == m_sessions.end()) return;
  Session& session = it->second;
  if ((message.type == "exec_started" || message.type == "created") && session.start_deadline) {
    session.start_deadline.reset();
    answer(session, session.member ? json{{"ok", true}, {"member", id}} : json{{"ok", true}});
  } else if (message.type == "error") {
    answer(session,
           {{"ok", false}, {"error", message.text.empty() ? "exec failed" : message.text}});
    end(id);
  } else if (message.type == "exit" && !session.start_deadline && !session.exit_code) {
    session.exit_code = exit_status(message);
    session.oom_killed = message.oom_killed;
    m_stdio.close_input(id, m_channel);
  }
}

void ExecSessions::add_poll_fds(std::vector<pollfd>& fds) const {
  for (const auto& [id, session] : m_sessions) fds.push_back({session.client.get(), POLLIN, 0});
}

bool ExecSessions::on_readable(int fd) {
  for (auto& [id, session] : m_sessions)
    if (session.client.get() == fd) {
      on_lines(id, session);
      return true;
    }
  return false;
}

// Later lines from a relay: signals for its process ({"op":"signal"}) and window sizes.
void ExecSessions::on_lines(uint32_t id, Session& session) {
  char buffer[4096];
  ssize_t n = ::read(session.client.get(), buffer, sizeof buffer);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0 || session.request.size() + n > kMaxRequest) {
    // The relay is gone (killed outright): its process goes too.
    channel::send_message(m_channel, {{"type", "signal"}, {"signal", SIGKILL}, {"exec", id}});
    end(id);
    return;
  }
  session.request.append(buffer, n);
  size_t newline;
  while ((newline = session.request.find('\n')) != std::string::npos) {
    json line = json::parse(session.request.substr(0, newline), nullptr, false);
    session.request.erase(0, newline + 1);
    if (!line.is_object()) continue;
    std::string op =
        line.contains("op") && line["op"].is_string() ? line["op"].get<std::string>() : "";
    auto number = [&](const char* key, int fallback) {
      return line.contains(key) && line[key].is_number_integer() ? line[key].get<int>() : fallback;
    };
    if (op == "signal" && number("signal", 0) > 0 && number("signal", 0) < NSIG)
      channel::send_message(m_channel,
                            {{"type", "signal"}, {"signal", number("signal", 0)}, {"exec", id}});
    else if (op == "resize")
      channel::send_message(m_channel, {{"type", "resize"},
                                        {"rows", number("rows", 24) & 0xffff},
                                        {"cols", number("cols", 80) & 0xffff},
                                        {"exec", id}});
  }
}

void ExecSessions::expire(Clock::time_point now) {
  std::vector<uint32_t> expired;
  for (auto& [id, session] : m_sessions)
    if (session.start_deadline && now >= *session.start_deadline) expired.push_back(id);
  for (uint32_t id : expired) {
    answer(m_sessions.at(id), {{"ok", false},
                               {"error", "the agent did not start the process within " +
                                             std::to_string(kStartTimeout.count()) + " s"}});
    channel::send_message(m_channel, {{"type", "signal"}, {"signal", SIGKILL}, {"exec", id}});
    end(id);
  }
}

void ExecSessions::finish() {
  std::vector<uint32_t> done;
  for (auto& [id, session] : m_sessions)
    if (session.exit_code && m_stdio.written(id)) {
      answer(session, {{"exit_code", *session.exit_code}, {"oom_killed", session.oom_killed}});
      done.push_back(id);
    }
  for (uint32_t id : done) end(id);
}

std::optional<ExecSessions::Clock::time_point> ExecSessions::next_deadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& [id, session] : m_sessions)
    if (session.start_deadline && (!next || *session.start_deadline < *next))
      next = session.start_deadline;
  return next;
}

void ExecSessions::end(uint32_t id) {
  m_stdio.remove(id, m_channel);
  m_sessions.erase(id);
}

}  // namespace vessel::shim

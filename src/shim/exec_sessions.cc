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

void ExecSessions::answer(const Session& session, const json& reply) {
  (void)sys::write_all(session.client.get(), reply.dump() + "\n");
}

void ExecSessions::start(UniqueFd client, const json& request, std::vector<UniqueFd> fds,
                         bool container_running, uint32_t member) {
  json process = field(request, "process");
  open(std::move(client), request, std::move(fds), container_running, process.is_object(),
       kStartTimeout, false, [&](uint32_t id) {
         return channel::from_host::Exec{id, member, process};
       });
}

void ExecSessions::create_member(UniqueFd client, const json& request, std::vector<UniqueFd> fds,
                                 bool container_running, const std::string& seccomp) {
  json spec = field(request, "spec"), root = field(request, "root");
  auto binds = channel::read_binds(field(request, "binds"));
  bool well_formed = spec.is_object() && root.is_string() && binds && request.contains("binds");
  open(
      std::move(client), request, std::move(fds), container_running, well_formed,
      std::chrono::seconds(60), true, [&](uint32_t id) {
        return channel::from_host::CreateMember{id, root.get<std::string>(), spec, *binds, seccomp};
      });
}

void ExecSessions::open(UniqueFd client, const json& request, std::vector<UniqueFd> fds,
                        bool container_running, bool well_formed, Clock::duration timeout,
                        bool member, const std::function<channel::HostMessage(uint32_t)>& message) {
  bool terminal = request.contains("terminal") && request["terminal"].is_boolean() &&
                  request["terminal"].get<bool>();
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
  channel::send(m_channel, message(id));
  m_sessions[id] = Session{std::move(client), "", std::nullopt, Clock::now() + timeout, member};
}

void ExecSessions::on_started(uint32_t id) {
  auto it = m_sessions.find(id);
  if (it == m_sessions.end() || !it->second.start_deadline) return;
  it->second.start_deadline.reset();
  answer(it->second, it->second.member ? json{{"ok", true}, {"member", id}} : json{{"ok", true}});
}

bool ExecSessions::on_failed(uint32_t id, const std::string& why) {
  auto it = m_sessions.find(id);
  if (it == m_sessions.end()) return false;
  answer(it->second, {{"ok", false}, {"error", why.empty() ? "exec failed" : why}});
  end(id);
  return true;
}

void ExecSessions::on_exit(const channel::from_agent::Exit& exit) {
  auto it = m_sessions.find(exit.process);
  if (it == m_sessions.end() || it->second.start_deadline || it->second.exit_code) return;
  it->second.exit_code = exit.status();
  it->second.oom_killed = exit.oom_killed;
  m_stdio.close_input(exit.process, m_channel);
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
    channel::send(m_channel, channel::from_host::Signal{id, SIGKILL});
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
      channel::send(m_channel, channel::from_host::Signal{id, number("signal", 0)});
    else if (op == "resize")
      channel::send(m_channel,
                    channel::from_host::Resize{id, static_cast<uint16_t>(number("rows", 24)),
                                               static_cast<uint16_t>(number("cols", 80))});
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
    channel::send(m_channel, channel::from_host::Signal{id, SIGKILL});
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

#include "shim/exec_sessions.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "common/sys.h"

namespace vessel::shim {

using control::Exited;
using control::Reply;

namespace {
constexpr size_t kMaxRequest = 65536;

void answer(const UniqueFd& client, const std::string& line) {
  (void)sys::write_all(client.get(), line);
}
}  // namespace

void ExecSessions::start(UniqueFd client, const control::request::Exec& exec,
                         std::vector<UniqueFd> fds, bool container_running, uint32_t member) {
  open(std::move(client), exec.terminal, std::move(fds), container_running, false,
       [&](uint32_t id) {
         return channel::from_host::Exec{id, member, exec.process};
       });
}

void ExecSessions::create_member(UniqueFd client, const control::request::CreateMember& create,
                                 std::vector<UniqueFd> fds, bool container_running,
                                 const std::string& seccomp) {
  open(std::move(client), create.terminal, std::move(fds), container_running, true,
       [&](uint32_t id) {
         return channel::from_host::CreateMember{id, create.root, create.spec, create.binds,
                                                 seccomp};
       });
}

void ExecSessions::open(UniqueFd client, bool terminal, std::vector<UniqueFd> fds,
                        bool container_running, bool member,
                        const std::function<channel::HostMessage(uint32_t)>& message) {
  std::string error = !container_running                   ? "the container is not running"
                      : m_sessions.size() >= kMaxExecs     ? "too many exec sessions"
                      : fds.size() != (terminal ? 1u : 3u) ? "bad exec request"
                                                           : "";
  if (!error.empty()) return answer(client, control::encode(Reply::failed(error)));
  uint32_t id = m_next_id++;
  if (terminal) {
    // The input is a second descriptor for the slave: made before fds[0] is moved away.
    UniqueFd input(::fcntl(fds[0].get(), F_DUPFD_CLOEXEC, 0));
    m_stdio.add(id, std::move(input), std::move(fds[0]), UniqueFd());
  } else {
    m_stdio.add(id, std::move(fds[0]), std::move(fds[1]), std::move(fds[2]));
  }
  channel::send(m_channel, message(id));
  auto timeout = member ? Clock::duration(kCreateTimeout) : Clock::duration(kStartTimeout);
  m_sessions[id] = Session{std::move(client), "", std::nullopt, Clock::now() + timeout, member};
}

void ExecSessions::on_started(uint32_t id) {
  auto it = m_sessions.find(id);
  if (it == m_sessions.end() || !it->second.start_deadline) return;
  it->second.start_deadline.reset();
  answer(it->second.client, control::encode(Reply{std::nullopt, it->second.member ? id : 0, {}}));
}

bool ExecSessions::on_failed(uint32_t id, const std::string& why) {
  auto it = m_sessions.find(id);
  if (it == m_sessions.end()) return false;
  answer(it->second.client, control::encode(Reply::failed(why.empty() ? "exec failed" : why)));
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

// Later lines from a relay: signals for its process and window sizes.
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
    auto line = control::parse_relay_message(std::string_view(session.request).substr(0, newline));
    session.request.erase(0, newline + 1);
    if (!line) continue;
    if (auto* signal = std::get_if<control::relay::Signal>(&*line))
      channel::send(m_channel, channel::from_host::Signal{id, signal->signal});
    else if (auto* size = std::get_if<control::relay::Resize>(&*line))
      channel::send(m_channel, channel::from_host::Resize{id, size->rows, size->cols});
  }
}

void ExecSessions::expire(Clock::time_point now) {
  std::vector<uint32_t> expired;
  for (auto& [id, session] : m_sessions)
    if (session.start_deadline && now >= *session.start_deadline) expired.push_back(id);
  for (uint32_t id : expired) {
    const Session& session = m_sessions.at(id);
    std::string why = session.member ? "the agent did not create the member within " +
                                           std::to_string(kCreateTimeout.count()) + " s"
                                     : "the agent did not start the process within " +
                                           std::to_string(kStartTimeout.count()) + " s";
    answer(session.client, control::encode(Reply::failed(why)));
    channel::send(m_channel, channel::from_host::Signal{id, SIGKILL});
    end(id);
  }
}

void ExecSessions::finish() {
  std::vector<uint32_t> done;
  for (auto& [id, session] : m_sessions)
    if (session.exit_code && m_stdio.written(id)) {
      answer(session.client, control::encode(Exited{*session.exit_code, session.oom_killed}));
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

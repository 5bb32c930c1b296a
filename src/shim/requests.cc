#include "shim/requests.h"

#include <signal.h>

#include "common/log.h"
#include "shim/seccomp.h"

namespace vessel::shim {

namespace host = channel::from_host;
namespace request = control::request;
using control::Reply;

namespace {

// After SIGKILL the agent has this long to report the exit before the VM is stopped outright.
constexpr auto kKillGrace = std::chrono::seconds(2);

}  // namespace

void Requests::on(ControlRequest& client) {
  if (!client.request) {
    log::debug("client: " + client.request.error().message);
    return respond(client.client, Reply::failed(client.request.error().message));
  }
  const control::Request& request = *client.request;
  log::debug("client: " + channel::type_of(request.op) +
             (request.member ? " (member " + std::to_string(request.member) + ")" : ""));
  std::visit([&](const auto& op) { handle(op, request.member, client); }, request.op);
}

void Requests::handle(const request::Start& start, uint32_t member, ControlRequest& client) {
  if (!m_pending.start(member, client.client))
    return respond(client.client, Reply::failed("the shim is busy"));
  if (!member) log::debug("starting the container");
  // A member's network is its pod's: only the VM's container takes one plumbed after create.
  m_guest.send(host::Start{member, member ? std::nullopt : start.network});
}

void Requests::handle(const request::Kill& kill, uint32_t member, ControlRequest& client) {
  if (!member && kill.signal == SIGKILL) {
    // A paused VM could not act on the signal: thaw it first, as runc does. And KILL means dead
    // whatever the guest does: the VM stops if the exit does not come in time.
    if (m_state.paused) ::kill(m_guest.vm().pid(), SIGCONT), m_state.paused = false;
    if (!m_state.kill_deadline)
      m_state.kill_deadline = std::chrono::steady_clock::now() + kKillGrace;
  }
  m_guest.send(host::Signal{member, kill.signal});
  respond(client.client, Reply{});
}

void Requests::handle(const request::Pause&, uint32_t member, ControlRequest& client) {
  pause(true, member, client);
}

void Requests::handle(const request::Resume&, uint32_t member, ControlRequest& client) {
  pause(false, member, client);
}

void Requests::pause(bool paused, uint32_t member, ControlRequest& client) {
  if (member) return ask_agent(paused ? "pause" : "resume", host::Freeze{member, paused}, client);
  // The whole VM stops: its clock, its devices, every process in it, as a cgroup freezer would.
  ::kill(m_guest.vm().pid(), paused ? SIGSTOP : SIGCONT);
  m_state.paused = paused;
  respond(client.client, Reply{});
}

void Requests::handle(const request::Update& update, uint32_t member, ControlRequest& client) {
  ask_agent(request::Update::kType, host::Update{member, update.resources}, client);
}

void Requests::handle(const request::ListProcesses&, uint32_t member, ControlRequest& client) {
  ask_agent(request::ListProcesses::kType, host::ListProcesses{member}, client);
}

void Requests::handle(const request::Exec& exec, uint32_t member, ControlRequest& client) {
  m_execs.start(std::move(client.client), exec, std::move(client.fds), !m_state.exit_status,
                member);
}

// A pod member (runtime/pod.h), created in this VM: its relay is its host process.
void Requests::handle(const request::CreateMember& create, uint32_t member,
                      ControlRequest& client) {
  if (member) return respond(client.client, Reply::failed("a pod member cannot create another"));
  // The runtime read the member's spec from its bundle; its seccomp profile is compiled here.
  auto spec = oci::parse_spec(create.spec);
  auto seccomp = spec ? compile_seccomp(spec->seccomp) : tl::unexpected(spec.error());
  if (!seccomp) return respond(client.client, Reply::failed(seccomp.error().message));
  m_execs.create_member(std::move(client.client), create, std::move(client.fds),
                        !m_state.exit_status, *seccomp);
}

void Requests::handle(const channel::Unknown&, uint32_t, ControlRequest& client) {
  respond(client.client, Reply::failed("unknown request"));
}

// Answered through m_pending; the next client waits for its own turn.
void Requests::ask_agent(std::string_view what, const channel::HostMessage& question,
                         ControlRequest& client) {
  if (!m_pending.ask(std::string(what), client.client))
    return respond(client.client, Reply::failed("the shim is busy with a " + m_pending.asked()));
  m_guest.send(question);
}

}  // namespace vessel::shim

#include "shim/requests.h"

#include <signal.h>

#include "common/log.h"
#include "shim/seccomp.h"

namespace vessel::shim {

using nlohmann::json;
namespace host = channel::from_host;

namespace {

// After SIGKILL the agent has this long to report the exit before the VM is stopped outright.
constexpr auto kKillGrace = std::chrono::seconds(2);

}  // namespace

// Requests are one JSON line (shim/control.h); a pod member's name it with "member" and are
// routed apart from the VM's own container's.
void Requests::on(ControlRequest& request) {
  log::debug("client: " +
             (request.op.empty() ? std::string("(no op)") : channel::printable(request.op, 64)) +
             (request.member ? " (member " + std::to_string(request.member) + ")" : ""));
  if (request.op == "exec") {
    m_execs.start(std::move(request.client), request.body, std::move(request.fds),
                  !m_state.exit_status, request.member);
  } else if (request.member) {
    on_member(request);
  } else {
    on_container(request);
  }
}

// {"op":"start"}, {"op":"kill","signal":N}, pause, resume, update, ps, and "member", which
// creates a pod member in this VM.
void Requests::on_container(ControlRequest& request) {
  const std::string& op = request.op;
  const int signal = request.signal;
  if (op == "start") {
    log::debug("starting the container");
    // An interface plumbed to the standby tap after create (runtime/late_network.h).
    const json& body = request.body;
    std::optional<channel::GuestNetwork> network;
    if (body.contains("network") && body["network"].is_object()) {
      auto read = channel::read_network(body["network"]);
      if (!read) return respond(request.client, {{"ok", false}, {"error", read.error().message}});
      network = std::move(*read);
    }
    if (!m_pending.start(0, request.client))
      return respond(request.client, {{"ok", false}, {"error", "the shim is busy"}});
    m_guest.send(host::Start{0, network});
  } else if (op == "member") {
    create_member(request);
  } else if (op == "pause" || op == "resume") {
    // The whole VM stops: its clock, its devices, every process in it, as a cgroup freezer would.
    ::kill(m_guest.vm().pid(), op == "pause" ? SIGSTOP : SIGCONT);
    m_state.paused = op == "pause";
    respond(request.client, {{"ok", true}});
  } else if (op == "kill" && signal > 0 && signal < NSIG) {
    if (signal == SIGKILL) {
      // A paused VM could not act on the signal: thaw it first, as runc does. And KILL means
      // dead whatever the guest does: the VM stops if the exit does not come in time.
      if (m_state.paused) ::kill(m_guest.vm().pid(), SIGCONT), m_state.paused = false;
      if (!m_state.kill_deadline)
        m_state.kill_deadline = std::chrono::steady_clock::now() + kKillGrace;
    }
    m_guest.send(host::Signal{0, signal});
    respond(request.client, {{"ok", true}});
  } else if (op == "update" || op == "ps") {
    ask_agent(request, 0);
  } else {
    respond(request.client, {{"ok", false}, {"error", "unknown request"}});
  }
}

// A pod member (runtime/pod.h): created in this VM, its relay is its host process.
void Requests::create_member(ControlRequest& request) {
  const json& body = request.body;
  // The runtime read the member's spec from its bundle; its seccomp profile is compiled here.
  auto spec = oci::parse_spec(body.contains("spec") ? body["spec"] : json());
  auto seccomp = spec ? compile_seccomp(spec->seccomp) : tl::unexpected(spec.error());
  if (!seccomp) return respond(request.client, {{"ok", false}, {"error", seccomp.error().message}});
  m_execs.create_member(std::move(request.client), body, std::move(request.fds),
                        !m_state.exit_status, *seccomp);
}

// start, kill, pause and resume (its cgroup frozen in the guest: the VM runs on for the pod),
// update and ps, for pod member `request.member`.
void Requests::on_member(ControlRequest& request) {
  const std::string& op = request.op;
  const uint32_t member = request.member;
  if (op == "start") {
    if (!m_pending.start(member, request.client))
      return respond(request.client, {{"ok", false}, {"error", "the shim is busy"}});
    m_guest.send(host::Start{member, std::nullopt});
  } else if (op == "kill" && request.signal > 0 && request.signal < NSIG) {
    m_guest.send(host::Signal{member, request.signal});
    respond(request.client, {{"ok", true}});
  } else if (op == "pause" || op == "resume" || op == "update" || op == "ps") {
    ask_agent(request, member);
  } else {
    respond(request.client, {{"ok", false}, {"error", "unknown request"}});
  }
}

// One question to the agent at a time (update, ps, a member's pause or resume); the next
// client waits for its own turn. Answered through m_pending.
void Requests::ask_agent(ControlRequest& request, uint32_t container) {
  const std::string& op = request.op;
  const json& body = request.body;
  if (op == "update" && !(body.contains("resources") && body["resources"].is_object()))
    return respond(request.client, {{"ok", false}, {"error", "unknown request"}});
  if (!m_pending.ask(op, request.client))
    return respond(request.client,
                   {{"ok", false}, {"error", "the shim is busy with a " + m_pending.asked()}});
  if (op == "ps")
    m_guest.send(host::ListProcesses{container});
  else if (op == "update")
    m_guest.send(host::Update{container, body["resources"]});
  else
    m_guest.send(host::Freeze{container, op == "pause"});
}

}  // namespace vessel::shim

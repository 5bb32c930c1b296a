// What the agent sends the host: one struct per message, AgentMessage the variant of them all,
// encoded and parsed only here. The guest is untrusted: every field is type-checked and bounded
// when parsed, once, so the shim never reads a raw JSON value the guest chose; text is made
// printable (channel::printable). docs/protocol.md lists every message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/channel/codec.h"

namespace vessel::channel {

constexpr size_t kMaxGuestText = 1024;
constexpr size_t kMaxGuestProcesses = 1024;
constexpr size_t kMaxGuestCommand = 256;

// A process of the container as the agent lists it (pids as the container's namespace sees them).
struct GuestProcess {
  uint32_t pid = 0, ppid = 0, uid = 0;
  std::string command;  // printable, at most kMaxGuestCommand bytes
};

// A list of processes as an answer carries it (to the host, and from the shim to the runtime's
// `ps`), and back: at most kMaxGuestProcesses, each checked.
nlohmann::json write_processes(const std::vector<GuestProcess>& processes);
Result<std::vector<GuestProcess>> read_processes(const nlohmann::json& list);

namespace from_agent {

// The first message after boot, and the answer to a resume.
struct Hello {
  static constexpr std::string_view kType = "hello";
  std::string version;
};

// Container 0 (the VM's) or a pod member was created, or started.
struct Created {
  static constexpr std::string_view kType = "created";
  uint32_t container = 0;
};

struct Started {
  static constexpr std::string_view kType = "started";
  uint32_t container = 0;
};

struct ExecStarted {
  static constexpr std::string_view kType = "exec_started";
  uint32_t exec = 0;
};

// A request about process `process` (0: the container's own create or start, a template's
// preparation or resume) failed.
struct Failed {
  static constexpr std::string_view kType = "error";
  uint32_t process = 0;
  std::string message;  // printable, at most kMaxGuestText bytes
};

// Process `process` ended, after its output was sent: with exit_code, or killed by signal.
struct Exit {
  static constexpr std::string_view kType = "exit";
  uint32_t process = 0;
  std::optional<int> exit_code;  // 0-255
  std::optional<int> signal;     // 1-64
  bool oom_killed = false;       // the container's memory limit killed it

  // The status a shim or relay exits with: the code, or 128+N for signal N.
  int status() const { return signal ? 128 + *signal : exit_code.value_or(255); }
};

// The answer to an update, a freeze or a ps: `error` when it failed, else the processes (ps).
struct Answer {
  static constexpr std::string_view kType = "answer";
  std::optional<std::string> error;
  std::vector<GuestProcess> processes;  // at most kMaxGuestProcesses
};

struct TemplateReady {
  static constexpr std::string_view kType = "template_ready";
};

// The TCP ports the guest listens on for 127.0.0.1, whenever they change (Create.watch_ports).
struct Ports {
  static constexpr std::string_view kType = "ports";
  std::vector<uint16_t> ports;  // at most kMaxGuestPorts, each 1-65535
};

// A Connect that could not be made.
struct ConnectFailed {
  static constexpr std::string_view kType = "connect_failed";
  uint32_t connection = 0;
  std::string message;
};

}  // namespace from_agent

using AgentMessage =
    std::variant<from_agent::Hello, from_agent::Created, from_agent::Started,
                 from_agent::ExecStarted, from_agent::Failed, from_agent::Exit, from_agent::Answer,
                 from_agent::TemplateReady, from_agent::Ports, from_agent::ConnectFailed, Unknown>;

// What the host waits for during setup: `Message`, or the Failed that says why not; nothing for
// any other message.
template <typename Message>
std::optional<Result<Message>> answer_of(const AgentMessage& message) {
  if (const auto* wanted = std::get_if<Message>(&message)) return Result<Message>(*wanted);
  if (const auto* failed = std::get_if<from_agent::Failed>(&message))
    return Result<Message>(
        fail(failed->message.empty() ? "the agent reported an error" : failed->message));
  return std::nullopt;
}

std::string encode(const AgentMessage& message);
void send(Channel& channel, const AgentMessage& message);
// Parses a Control frame from the agent. Fails on anything that is not a JSON object with a
// string "type", or a known message whose fields have the wrong type or range.
Result<AgentMessage> parse_agent_message(const Frame& frame);

}  // namespace vessel::channel

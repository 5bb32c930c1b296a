// Control messages on the agent channel: small JSON objects with a "type" field.
//   agent → shim  hello{version}   first thing after boot
//   shim → agent  create{spec}     agent answers created{} or error{message}
//   shim → agent  start{}          agent answers started{} or error{message}
//   shim → agent  signal{signal}   forwarded to the container's process
//   shim → agent  resize{rows,cols}
//   agent → shim  exit{exit_code | signal}   after the process's output has been sent
//   shim → agent  shutdown{}       the agent powers the VM off
//   shim → agent  exec{exec, process}   agent answers exec_started{exec} or error{exec, message}
//   shim → agent  update{resources}     agent answers updated{} or update_failed{message}
//   shim → agent  ps{}                  agent answers processes{processes: [{pid, ppid, uid, cmd}]}
//   shim → agent  create{..., watch_ports: true}   agent sends ports{ports: [N...]}, the TCP
//                 ports the guest listens on for 127.0.0.1, whenever they change
//   shim → agent  connect{connection, port}   a connection to 127.0.0.1:port in the guest; the
//                 agent answers connect_failed{connection, message} if it cannot be made
// signal, resize and exit carry "exec": N when they concern exec'd process N rather than the init.
// Stdio streams: process N's stdin, stdout and stderr are stream_of(N, kStdin/kStdout/kStderr);
// the init is process 0 (streams 1, 2, 3). With a terminal only stdin and stdout are used.
// A forwarded connection N (N >= kFirstConnection) takes the place of a process: the host's side
// on stream_of(N, kStdin), the guest's on stream_of(N, kStdout) (common/channel/socket_stream.h).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/channel/frame.h"

namespace vessel::channel {

constexpr uint32_t kStdin = 1;
constexpr uint32_t kStdout = 2;
constexpr uint32_t kStderr = 3;
// Processes (the init, execs, pod members) have ids up to kMaxProcessId, forwarded connections
// the ids after it: stream_of(kLastConnection, kStderr) is the largest stream id.
constexpr uint32_t kMaxProcessId = (1u << 29) - 1;
constexpr uint32_t kFirstConnection = kMaxProcessId + 1;
constexpr uint32_t kLastConnection = (1u << 30) - 1;
constexpr size_t kMaxConnections = 64;  // open at once, per VM
constexpr size_t kMaxGuestPorts = 256;  // reported in one ports message

// The 9p tags of a pod's shares (docs/pods.md): members' root filesystems (ownership as the guest
// sets it, like the root filesystem) and their volumes and files (as volumes).
inline constexpr const char* kPodRootsTag = "pod-roots";
inline constexpr const char* kPodVolumesTag = "pod-volumes";

constexpr uint32_t stream_of(uint32_t process, uint32_t stdio) { return process * 4 + stdio; }
constexpr uint32_t process_of(uint32_t stream) { return stream / 4; }

// The build's version; the runtime and the agent must carry the same one.
std::string_view build_version();

void send_message(Channel& channel, const nlohmann::json& message);
// Parses a Control frame's payload; the result always has a string "type".
Result<nlohmann::json> parse_message(const Frame& frame);

// What the host accepts from the agent. The guest is untrusted: every field is type-checked and
// bounded here, once, so the shim never reads a raw JSON value the guest chose.
// A process of the container as the agent lists it (pids as the container's namespace sees them).
struct GuestProcess {
  uint32_t pid = 0, ppid = 0, uid = 0;
  std::string command;  // printable, at most kMaxGuestCommand bytes
};

constexpr size_t kMaxGuestProcesses = 1024;
constexpr size_t kMaxGuestCommand = 256;

struct AgentMessage {
  std::string type;  // hello, created, started, error, exit, exec_started, ports, or other
  std::optional<uint32_t> exec;  // the exec'd process it concerns; none for the container's init
  std::string version;           // hello
  std::string text;              // error: printable, at most kMaxGuestText bytes
  std::optional<int> exit_code;  // exit: 0-255
  std::optional<int> signal;     // exit: 1-64, when the process was killed by a signal
  bool oom_killed = false;       // exit: the container's memory limit killed it
  std::vector<GuestProcess> processes;         // processes: at most kMaxGuestProcesses
  std::optional<uint32_t> connection;          // connect_failed: a forwarded connection's id
  std::optional<std::vector<uint16_t>> ports;  // ports: at most kMaxGuestPorts, each 1-65535
};

constexpr size_t kMaxGuestText = 1024;

// Parses a Control frame from the agent. Fails on anything that is not a JSON object with a
// string "type" or whose known fields have the wrong type or range.
Result<AgentMessage> parse_agent_message(const Frame& frame);

// Text from the guest made safe to print or log: control characters and invalid UTF-8 become
// '?', and it is cut at max bytes.
std::string printable(std::string_view text, size_t max = kMaxGuestText);

// The error a runtime reports when the agent in the guest image is from another build.
std::string version_mismatch_message(std::string_view runtime_version,
                                     std::string_view agent_version);

}  // namespace vessel::channel

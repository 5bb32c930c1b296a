// Control messages on the agent channel: small JSON objects with a "type" field.
//   agent → shim  hello{version}   first thing after boot
//   shim → agent  create{spec}     agent answers created{} or error{message}
//   shim → agent  start{}          agent answers started{} or error{message}
//   shim → agent  signal{signal}   forwarded to the container's process
//   shim → agent  resize{rows,cols}
//   agent → shim  exit{exit_code | signal}   after the process's output has been sent
//   shim → agent  shutdown{}       the agent powers the VM off
//   shim → agent  exec{exec, process}   agent answers exec_started{exec} or error{exec, message}
// signal, resize and exit carry "exec": N when they concern exec'd process N rather than the init.
// Stdio streams: process N's stdin, stdout and stderr are stream_of(N, kStdin/kStdout/kStderr);
// the init is process 0 (streams 1, 2, 3). With a terminal only stdin and stdout are used.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/channel/frame.h"

namespace vessel::channel {

constexpr uint32_t kStdin = 1;
constexpr uint32_t kStdout = 2;
constexpr uint32_t kStderr = 3;
constexpr uint32_t kMaxProcessId = (1u << 30) - 1;

constexpr uint32_t stream_of(uint32_t process, uint32_t stdio) { return process * 4 + stdio; }
constexpr uint32_t process_of(uint32_t stream) { return stream / 4; }

// The build's version; the runtime and the agent must carry the same one.
std::string_view build_version();

void send_message(Channel& channel, const nlohmann::json& message);
// Parses a Control frame's payload; the result always has a string "type".
Result<nlohmann::json> parse_message(const Frame& frame);

// The error a runtime reports when the agent in the guest image is from another build.
std::string version_mismatch_message(std::string_view runtime_version,
                                     std::string_view agent_version);

}  // namespace vessel::channel

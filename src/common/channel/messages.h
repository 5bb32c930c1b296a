// The agent channel's addressing and the text rules both directions share. Control messages are
// small JSON objects with a "type": what the host sends is host_messages.h, what the agent sends
// agent_messages.h, both listed in docs/protocol.md.
// Stdio streams: process N's stdin, stdout and stderr are stream_of(N, kStdin/kStdout/kStderr);
// the init is process 0 (streams 1, 2, 3). With a terminal only stdin and stdout are used.
// A forwarded connection N (N >= kFirstConnection) takes the place of a process: the host's side
// on stream_of(N, kStdin), the guest's on stream_of(N, kStdout) (common/channel/socket_stream.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

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

// Parses a Control frame's payload; the result always has a string "type".
Result<nlohmann::json> parse_message(const Frame& frame);

// Text from the guest made safe to print or log: control characters and invalid UTF-8 become
// '?', and it is cut at max bytes.
std::string printable(std::string_view text, size_t max = 1024);

// The error a runtime reports when the agent in the guest image is from another build.
std::string version_mismatch_message(std::string_view runtime_version,
                                     std::string_view agent_version);

}  // namespace vessel::channel

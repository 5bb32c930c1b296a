// The shim's control protocol on STATE/ID/shim.sock: what the runtime's verbs, `vessel exec`'s
// relays and pod members' host processes ask of a running sandbox, and what the shim answers.
// One JSON line each way, typed as the agent channel's messages are (common/channel/codec.h),
// with "op" naming a request. A connection's first line is a Request (an exec or a member passes
// its stdio with it) and gets one Reply; an exec's or a member's relay then sends RelayMessages
// and, when its process ends, is sent Exited. Both ends are this build's, but the socket is the
// user's: the shim reads every field checked and bounded (and each line within 64 KiB,
// shim/control.h). docs/protocol.md#the-shims-control-socket lists every request.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/channel/agent_messages.h"
#include "common/channel/host_messages.h"

namespace vessel::control {

namespace request {

// Starts the container. `network`: an interface that reached the namespace after create
// (runtime/late_network.h). Answered once the agent started it.
struct Start {
  static constexpr std::string_view kType = "start";
  std::optional<channel::GuestNetwork> network;
};

struct Kill {
  static constexpr std::string_view kType = "kill";
  int signal = 0;  // 1-64
};

// The whole VM stopped and resumed; a pod member's cgroup frozen and thawed in the guest.
struct Pause {
  static constexpr std::string_view kType = "pause";
};
struct Resume {
  static constexpr std::string_view kType = "resume";
};

// New limits for the container's cgroup in the guest (an OCI resources object).
struct Update {
  static constexpr std::string_view kType = "update";
  nlohmann::json resources;
};

// Answered with the container's processes.
struct ListProcesses {
  static constexpr std::string_view kType = "ps";
};

// An OCI process started in the container; with the relay's stdio (three descriptors, or a
// terminal's slave).
struct Exec {
  static constexpr std::string_view kType = "exec";
  nlohmann::json process;
  bool terminal = false;
};

// A pod member created in this VM (runtime/pod.h) from `spec`, its root the entry `root` of the
// pod's share; with its stdio as for Exec. Answered with the member's id.
struct CreateMember {
  static constexpr std::string_view kType = "member";
  nlohmann::json spec;
  std::vector<channel::GuestBind> binds;
  std::string root;
  bool terminal = false;
};

}  // namespace request

using RequestOp =
    std::variant<request::Start, request::Kill, request::Pause, request::Resume, request::Update,
                 request::ListProcesses, request::Exec, request::CreateMember, channel::Unknown>;

struct Request {
  RequestOp op;
  uint32_t member = 0;  // the pod member it concerns (its id); 0: the sandbox's own container
};

// One line, ending in '\n'.
std::string encode(const Request& request);
// Fails, naming the field, on a line that is not a request or whose fields have the wrong type
// or range; an op this build does not know is Unknown.
Result<Request> parse_request(std::string_view line);

namespace relay {

// A signal the relay received, for its process.
struct Signal {
  static constexpr std::string_view kType = "signal";
  int signal = 0;  // 1-64
};

// The relay's terminal changed size.
struct Resize {
  static constexpr std::string_view kType = "resize";
  uint16_t rows = 24, cols = 80;
};

}  // namespace relay

using RelayMessage = std::variant<relay::Signal, relay::Resize, channel::Unknown>;

std::string encode(const RelayMessage& message);
Result<RelayMessage> parse_relay_message(std::string_view line);

// The shim's answer to a request: done, or refused or failed with the reason.
struct Reply {
  std::optional<std::string> error;
  uint32_t member = 0;                           // a created member's id
  std::vector<channel::GuestProcess> processes;  // ps

  static Reply failed(std::string why) { return Reply{std::move(why), 0, {}}; }
};

// An exec's or a member's end, sent to its relay after its Reply.
struct Exited {
  int exit_code = 0;  // 0-255
  bool oom_killed = false;
};

std::string encode(const Reply& reply);
std::string encode(const Exited& exited);
Result<Reply> parse_reply(std::string_view line);
Result<Exited> parse_exited(std::string_view line);

}  // namespace vessel::control

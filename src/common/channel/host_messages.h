// What the host (the shim) sends the agent: one struct per message, HostMessage the variant of
// them all, encoded and parsed only here. The agent checks every field as the host checks the
// agent's (agent_messages.h); the OCI documents a message carries whole (a spec, resources, a
// process) are parsed by the spec model (common/oci_spec.h).
// docs/protocol.md lists every message with its answer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/channel/codec.h"

namespace vessel::channel {

// How one bind mount of the spec reaches the guest (shim/binds.h, runtime/pod.h): an entry of a
// 9p share (a volume, `path`, or a bound file, `file`), a whole share, or something the guest
// makes itself (a tmpfs for Podman's /dev/shm, its own device node for a bound device).
struct GuestBind {
  std::string destination;
  bool readonly = false;
  std::string share;                   // the 9p share's tag
  std::string path;                    // an entry of the pod volume share
  std::string file;                    // an entry of the files share
  std::optional<uint64_t> tmpfs_size;  // made as a tmpfs of this many bytes
  std::optional<char> device;          // made as the guest's own 'c' or 'b' node
  uint32_t major = 0, minor = 0;
  int tree_fd = -1;  // the agent's own: a mount cloned from the pod's first container; never sent
};

// A list of binds as the channel and the shim's control socket carry it, and back, checked.
nlohmann::json write_binds(const std::vector<GuestBind>& binds);
Result<std::vector<GuestBind>> read_binds(const nlohmann::json& list);

// The network the agent configures: the host's interfaces that the VM's cards stand in for, with
// their addresses, and the routes (host/host_network.h describes them).
struct GuestAddress {
  std::string family = "inet";  // or inet6
  std::string address;
  unsigned prefix = 0;
};
struct GuestInterface {
  std::string name;
  std::string mac;
  unsigned mtu = 1500;
  std::vector<GuestAddress> addresses;
};
struct GuestRoute {
  std::string family = "inet";
  std::string destination = "default";
  std::string gateway;  // none: on the link
  std::string device;
};
struct GuestNetwork {
  std::vector<GuestInterface> interfaces;
  std::vector<GuestRoute> routes;
};

nlohmann::json write_network(const GuestNetwork& network);
Result<GuestNetwork> read_network(const nlohmann::json& object);

namespace from_host {

// The container the VM was booted for. Answered created{} or error{}.
struct Create {
  static constexpr std::string_view kType = "create";
  nlohmann::json spec;  // config.json, parsed by oci::parse_spec
  GuestNetwork network;
  std::vector<GuestBind> binds;
  std::string seccomp;       // the compiled filter (shim/seccomp.h), bytes
  bool watch_ports = false;  // report the guest's ports (a CRI pod's sandbox: port_forward.h)
};

// A pod member, created as process `member` from the directory `root` of the pod's share.
// Answered created{container: member} or error{process: member}.
struct CreateMember {
  static constexpr std::string_view kType = "create_member";
  uint32_t member = 0;
  std::string root;  // one path component
  nlohmann::json spec;
  std::vector<GuestBind> binds;
  std::string seccomp;
};

// Starts container 0 (the VM's) or a pod member. `network`: an interface that reached the
// host's namespace after create (Docker's prestart hook), or null. Answered started{} or error{}.
struct Start {
  static constexpr std::string_view kType = "start";
  uint32_t container = 0;
  std::optional<GuestNetwork> network;
};

// Starts `process` (an OCI process object) in `container` as exec `id`. Answered
// exec_started{exec} or error{process: id}.
struct Exec {
  static constexpr std::string_view kType = "exec";
  uint32_t id = 0;
  uint32_t container = 0;
  nlohmann::json process;
};

// To process `process` (0: the container's init; an exec's or member's id).
struct Signal {
  static constexpr std::string_view kType = "signal";
  uint32_t process = 0;
  int signal = 0;  // 1-64
};

struct Resize {
  static constexpr std::string_view kType = "resize";
  uint32_t process = 0;
  uint16_t rows = 24, cols = 80;
};

// New limits (oci::parse_resources) for a container's cgroup. Answered answer{}.
struct Update {
  static constexpr std::string_view kType = "update";
  uint32_t container = 0;
  nlohmann::json resources;
};

// A pod member paused or resumed alone (its cgroup frozen). Answered answer{}.
struct Freeze {
  static constexpr std::string_view kType = "freeze";
  uint32_t container = 0;
  bool frozen = true;
};

// The container's processes. Answered answer{processes}.
struct ListProcesses {
  static constexpr std::string_view kType = "ps";
  uint32_t container = 0;
};

// A connection to 127.0.0.1:port in the guest, as forwarded connection `connection`; answered
// connect_failed{} only if it cannot be made.
struct Connect {
  static constexpr std::string_view kType = "connect";
  uint32_t connection = 0;
  uint16_t port = 0;
};

// Ready the guest to be saved as a template. Answered template_ready{} or error{}.
struct Template {
  static constexpr std::string_view kType = "template";
};

// A restored template's guest made its own: fresh entropy and its cards' MACs. Answered hello{}.
struct Resume {
  static constexpr std::string_view kType = "resume";
  std::string entropy;            // bytes
  std::vector<std::string> macs;  // "52:54:…", one per card
};

// The host's time, once a restored guest runs.
struct SetClock {
  static constexpr std::string_view kType = "clock";
  int64_t realtime_ns = 0;
};

// The agent powers the VM off.
struct Shutdown {
  static constexpr std::string_view kType = "shutdown";
};

}  // namespace from_host

using HostMessage =
    std::variant<from_host::Create, from_host::CreateMember, from_host::Start, from_host::Exec,
                 from_host::Signal, from_host::Resize, from_host::Update, from_host::Freeze,
                 from_host::ListProcesses, from_host::Connect, from_host::Template,
                 from_host::Resume, from_host::SetClock, from_host::Shutdown, Unknown>;

std::string encode(const HostMessage& message);
void send(Channel& channel, const HostMessage& message);
// Parses a Control frame from the host; fails on a malformed message or a known one whose fields
// have the wrong type or range.
Result<HostMessage> parse_host_message(const Frame& frame);

}  // namespace vessel::channel

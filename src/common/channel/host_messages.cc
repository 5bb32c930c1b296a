#include "common/channel/host_messages.h"

#include "common/base64.h"
#include "common/channel/fields.h"

namespace vessel::channel {

using nlohmann::json;

namespace from_host {

namespace {

constexpr size_t kMaxSeccomp = 1 << 20;  // a compiled filter's bytes, base64 on the wire
constexpr size_t kMaxMacs = 16;

template <typename Id>
Result<Id> id(const json& message, const char* key, int64_t min, int64_t max) {
  return static_cast<Id>(TRY(fields::integer(message, key, min, max)).value_or(min));
}

Result<uint32_t> container_id(const json& message) {
  return id<uint32_t>(message, "container", 0, kMaxProcessId);
}

Result<uint32_t> process_id(const json& message, const char* key) {
  return static_cast<uint32_t>(TRY(fields::required_integer(message, key, 1, kMaxProcessId)));
}

Result<std::string> bytes(const json& message, const char* key) {
  return base64_decode(TRY(fields::string(message, key, kMaxSeccomp))).map_error([&](Error error) {
    error.code = EPROTO;
    error.message = std::string("agent channel: \"") + key + "\" is not base64";
    return error;
  });
}

}  // namespace

void write(const Create& message, json& json) {
  json["spec"] = message.spec;
  json["network"] = message.network;
  json["binds"] = message.binds;
  json["seccomp"] = base64_encode(message.seccomp);
  json["watch_ports"] = message.watch_ports;
}

Result<Create> read(const json& json, std::type_identity<Create>) {
  Create message;
  message.spec = TRY(fields::object(json, "spec"));
  if (message.spec.is_null()) return fail(EPROTO, "agent channel: a create without a spec");
  message.network = TRY(fields::object(json, "network"));
  message.binds = TRY(fields::array(json, "binds"));
  message.seccomp = TRY(bytes(json, "seccomp"));
  message.watch_ports = TRY(fields::boolean(json, "watch_ports", false));
  return message;
}

void write(const CreateMember& message, json& json) {
  json["member"] = message.member;
  json["root"] = message.root;
  json["spec"] = message.spec;
  json["binds"] = message.binds;
  json["seccomp"] = base64_encode(message.seccomp);
}

Result<CreateMember> read(const json& json, std::type_identity<CreateMember>) {
  CreateMember message;
  message.member = TRY(process_id(json, "member"));
  message.root = TRY(fields::string(json, "root", 255));
  message.spec = TRY(fields::object(json, "spec"));
  if (message.spec.is_null()) return fail(EPROTO, "agent channel: a create without a spec");
  message.binds = TRY(fields::array(json, "binds"));
  message.seccomp = TRY(bytes(json, "seccomp"));
  return message;
}

void write(const Start& message, json& json) {
  json["container"] = message.container;
  if (!message.network.is_null()) json["network"] = message.network;
}

Result<Start> read(const json& json, std::type_identity<Start>) {
  return Start{TRY(container_id(json)), TRY(fields::object(json, "network"))};
}

void write(const Exec& message, json& json) {
  json["exec"] = message.id;
  json["container"] = message.container;
  json["process"] = message.process;
}

Result<Exec> read(const json& json, std::type_identity<Exec>) {
  Exec message{TRY(process_id(json, "exec")), TRY(container_id(json)),
               TRY(fields::object(json, "process"))};
  if (message.process.is_null()) return fail(EPROTO, "agent channel: an exec without a process");
  return message;
}

void write(const Signal& message, json& json) {
  json["process"] = message.process;
  json["signal"] = message.signal;
}

Result<Signal> read(const json& json, std::type_identity<Signal>) {
  return Signal{TRY(id<uint32_t>(json, "process", 0, kMaxProcessId)),
                static_cast<int>(TRY(fields::required_integer(json, "signal", 1, 64)))};
}

void write(const Resize& message, json& json) {
  json["process"] = message.process;
  json["rows"] = message.rows;
  json["cols"] = message.cols;
}

Result<Resize> read(const json& json, std::type_identity<Resize>) {
  Resize message;
  message.process = TRY(id<uint32_t>(json, "process", 0, kMaxProcessId));
  message.rows = static_cast<uint16_t>(TRY(fields::integer(json, "rows", 0, 65535)).value_or(24));
  message.cols = static_cast<uint16_t>(TRY(fields::integer(json, "cols", 0, 65535)).value_or(80));
  return message;
}

void write(const Update& message, json& json) {
  json["container"] = message.container;
  json["resources"] = message.resources;
}

Result<Update> read(const json& json, std::type_identity<Update>) {
  Update message{TRY(container_id(json)), TRY(fields::object(json, "resources"))};
  if (message.resources.is_null()) message.resources = json::object();
  return message;
}

void write(const Freeze& message, json& json) {
  json["container"] = message.container;
  json["frozen"] = message.frozen;
}

Result<Freeze> read(const json& json, std::type_identity<Freeze>) {
  return Freeze{TRY(container_id(json)), TRY(fields::boolean(json, "frozen", true))};
}

void write(const ListProcesses& message, json& json) { json["container"] = message.container; }

Result<ListProcesses> read(const json& json, std::type_identity<ListProcesses>) {
  return ListProcesses{TRY(container_id(json))};
}

void write(const Connect& message, json& json) {
  json["connection"] = message.connection;
  json["port"] = message.port;
}

Result<Connect> read(const json& json, std::type_identity<Connect>) {
  return Connect{static_cast<uint32_t>(TRY(fields::required_integer(
                     json, "connection", kFirstConnection, kLastConnection))),
                 static_cast<uint16_t>(TRY(fields::required_integer(json, "port", 1, 65535)))};
}

void write(const Template&, json&) {}

Result<Template> read(const json&, std::type_identity<Template>) { return Template{}; }

void write(const Resume& message, json& json) {
  json["entropy"] = base64_encode(message.entropy);
  json["macs"] = message.macs;
}

Result<Resume> read(const json& json, std::type_identity<Resume>) {
  Resume message;
  message.entropy = TRY(bytes(json, "entropy"));
  nlohmann::json macs = TRY(fields::array(json, "macs"));
  if (macs.size() > kMaxMacs) return fail(EPROTO, "agent channel: too many MACs");
  for (const auto& mac : macs) {
    if (!mac.is_string() || mac.get_ref<const std::string&>().size() > 32)
      return fail(EPROTO, "agent channel: a MAC is not a short string");
    message.macs.push_back(mac.get<std::string>());
  }
  return message;
}

void write(const SetClock& message, json& json) { json["realtime_ns"] = message.realtime_ns; }

Result<SetClock> read(const json& json, std::type_identity<SetClock>) {
  return SetClock{TRY(fields::required_integer(json, "realtime_ns", 1, INT64_MAX))};
}

void write(const Shutdown&, json&) {}

Result<Shutdown> read(const json&, std::type_identity<Shutdown>) { return Shutdown{}; }

}  // namespace from_host

std::string encode(const HostMessage& message) { return encode_variant(message); }

void send(Channel& channel, const HostMessage& message) {
  channel.send(FrameType::Control, kControlStream, encode(message));
}

Result<HostMessage> parse_host_message(const Frame& frame) {
  return decode_variant<HostMessage>(frame);
}

}  // namespace vessel::channel

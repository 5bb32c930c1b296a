#include "common/channel/agent_messages.h"

#include "common/channel/fields.h"

namespace vessel::channel {

using nlohmann::json;

namespace {

Result<GuestProcess> read_process(const json& entry) {
  if (!entry.is_object()) return fail(EPROTO, "a process is not an object");
  GuestProcess process;
  process.pid = static_cast<uint32_t>(TRY(fields::required_integer(entry, "pid", 1, 1 << 22)));
  process.ppid = static_cast<uint32_t>(TRY(fields::integer(entry, "ppid", 0, 1 << 22)).value_or(0));
  process.uid =
      static_cast<uint32_t>(TRY(fields::integer(entry, "uid", 0, 0xffffffffLL)).value_or(0));
  process.command = TRY(fields::text(entry, "cmd", kMaxGuestCommand));
  return process;
}

}  // namespace

json write_processes(const std::vector<GuestProcess>& processes) {
  json list = json::array();
  for (const auto& process : processes)
    list.push_back({{"pid", process.pid},
                    {"ppid", process.ppid},
                    {"uid", process.uid},
                    {"cmd", process.command}});
  return list;
}

Result<std::vector<GuestProcess>> read_processes(const json& list) {
  if (list.is_null()) return std::vector<GuestProcess>{};
  if (!list.is_array() || list.size() > kMaxGuestProcesses)
    return fail(EPROTO,
                "\"processes\" is not a list of at most " + std::to_string(kMaxGuestProcesses));
  std::vector<GuestProcess> processes;
  for (const auto& entry : list) processes.push_back(TRY(read_process(entry)));
  return processes;
}

namespace from_agent {

namespace {

Result<uint32_t> id(const json& message, const char* key) {
  return static_cast<uint32_t>(TRY(fields::integer(message, key, 0, kMaxProcessId)).value_or(0));
}

Result<std::string> text(const json& message) {
  return fields::text(message, "message", kMaxGuestText);
}

}  // namespace

void write(const Hello& message, json& json) { json["version"] = message.version; }

Result<Hello> read(const json& json, std::type_identity<Hello>) {
  return Hello{TRY(fields::text(json, "version", kMaxGuestText))};
}

void write(const Created& message, json& json) { json["container"] = message.container; }

Result<Created> read(const json& json, std::type_identity<Created>) {
  return Created{TRY(id(json, "container"))};
}

void write(const Started& message, json& json) { json["container"] = message.container; }

Result<Started> read(const json& json, std::type_identity<Started>) {
  return Started{TRY(id(json, "container"))};
}

void write(const ExecStarted& message, json& json) { json["exec"] = message.exec; }

Result<ExecStarted> read(const json& json, std::type_identity<ExecStarted>) {
  return ExecStarted{TRY(id(json, "exec"))};
}

void write(const Failed& message, json& json) {
  json["process"] = message.process;
  json["message"] = message.message;
}

Result<Failed> read(const json& json, std::type_identity<Failed>) {
  return Failed{TRY(id(json, "process")), TRY(text(json))};
}

void write(const Exit& message, json& json) {
  json["process"] = message.process;
  if (message.exit_code) json["exit_code"] = *message.exit_code;
  if (message.signal) json["signal"] = *message.signal;
  if (message.oom_killed) json["oom_killed"] = true;
}

Result<Exit> read(const json& json, std::type_identity<Exit>) {
  Exit message;
  message.process = TRY(id(json, "process"));
  if (auto code = TRY(fields::integer(json, "exit_code", 0, 255)))
    message.exit_code = static_cast<int>(*code);
  if (auto signal = TRY(fields::integer(json, "signal", 1, 64)))
    message.signal = static_cast<int>(*signal);
  message.oom_killed = TRY(fields::boolean(json, "oom_killed", false));
  if (!message.exit_code && !message.signal)
    return fail(EPROTO, "an exit message without exit_code or signal");
  return message;
}

void write(const Answer& message, json& json) {
  if (message.error) json["message"] = *message.error;
  if (!message.processes.empty()) json["processes"] = write_processes(message.processes);
}

Result<Answer> read(const json& json, std::type_identity<Answer>) {
  Answer message;
  if (json.contains("message")) message.error = TRY(text(json));
  message.processes = TRY(read_processes(TRY(fields::array(json, "processes"))));
  return message;
}

void write(const TemplateReady&, json&) {}

Result<TemplateReady> read(const json&, std::type_identity<TemplateReady>) {
  return TemplateReady{};
}

void write(const Ports& message, json& json) { json["ports"] = message.ports; }

Result<Ports> read(const json& json, std::type_identity<Ports>) {
  nlohmann::json list = TRY(fields::array(json, "ports"));
  if (list.size() > kMaxGuestPorts)
    return fail(EPROTO, "\"ports\" is not a list of at most " + std::to_string(kMaxGuestPorts));
  Ports message;
  for (const auto& entry : list) {
    if (!entry.is_number_unsigned() || entry.get<uint64_t>() < 1 || entry.get<uint64_t>() > 65535)
      return fail(EPROTO, "a port is not a number in [1, 65535]");
    message.ports.push_back(static_cast<uint16_t>(entry.get<uint64_t>()));
  }
  return message;
}

void write(const ConnectFailed& message, json& json) {
  json["connection"] = message.connection;
  json["message"] = message.message;
}

Result<ConnectFailed> read(const json& json, std::type_identity<ConnectFailed>) {
  return ConnectFailed{static_cast<uint32_t>(TRY(fields::required_integer(
                           json, "connection", kFirstConnection, kLastConnection))),
                       TRY(text(json))};
}

}  // namespace from_agent

std::string encode(const AgentMessage& message) { return encode_variant(message); }

void send(Channel& channel, const AgentMessage& message) {
  channel.send(FrameType::Control, kControlStream, encode(message));
}

Result<AgentMessage> parse_agent_message(const Frame& frame) {
  return decode_variant<AgentMessage>(frame);
}

}  // namespace vessel::channel

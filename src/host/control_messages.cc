#include "host/control_messages.h"

#include "common/channel/fields.h"

namespace vessel::control {

using nlohmann::json;
namespace fields = channel::fields;

namespace {

constexpr size_t kMaxRoot = 255;  // one path component

Result<json> parse_object(std::string_view line) {
  json object = json::parse(line, nullptr, false);
  if (object.is_discarded() || !object.is_object()) return fail(EPROTO, "not a JSON object");
  return object;
}

Result<int> signal_number(const json& json) {
  return static_cast<int>(TRY(fields::required_integer(json, "signal", 1, 64)));
}

}  // namespace

namespace request {

void write(const Start& message, json& json) {
  if (message.network) json["network"] = channel::write_network(*message.network);
}

Result<Start> read(const json& json, std::type_identity<Start>) {
  Start message;
  if (json.contains("network")) message.network = TRY(channel::read_network(json["network"]));
  return message;
}

void write(const Kill& message, json& json) { json["signal"] = message.signal; }

Result<Kill> read(const json& json, std::type_identity<Kill>) {
  return Kill{TRY(signal_number(json))};
}

void write(const Pause&, json&) {}

Result<Pause> read(const json&, std::type_identity<Pause>) { return Pause{}; }

void write(const Resume&, json&) {}

Result<Resume> read(const json&, std::type_identity<Resume>) { return Resume{}; }

void write(const Update& message, json& json) { json["resources"] = message.resources; }

Result<Update> read(const json& json, std::type_identity<Update>) {
  Update message{TRY(fields::object(json, "resources"))};
  if (message.resources.is_null()) return fail(EPROTO, "an update without resources");
  return message;
}

void write(const ListProcesses&, json&) {}

Result<ListProcesses> read(const json&, std::type_identity<ListProcesses>) {
  return ListProcesses{};
}

void write(const Exec& message, json& json) {
  json["process"] = message.process;
  json["terminal"] = message.terminal;
}

Result<Exec> read(const json& json, std::type_identity<Exec>) {
  Exec message{TRY(fields::object(json, "process")), TRY(fields::boolean(json, "terminal", false))};
  if (message.process.is_null()) return fail(EPROTO, "an exec without a process");
  return message;
}

void write(const CreateMember& message, json& json) {
  json["spec"] = message.spec;
  json["binds"] = channel::write_binds(message.binds);
  json["root"] = message.root;
  json["terminal"] = message.terminal;
}

Result<CreateMember> read(const json& json, std::type_identity<CreateMember>) {
  CreateMember message;
  message.spec = TRY(fields::object(json, "spec"));
  if (message.spec.is_null()) return fail(EPROTO, "a member without a spec");
  message.binds = TRY(channel::read_binds(TRY(fields::array(json, "binds"))));
  message.root = TRY(fields::string(json, "root", kMaxRoot));
  if (message.root.empty()) return fail(EPROTO, "a member without a root");
  message.terminal = TRY(fields::boolean(json, "terminal", false));
  return message;
}

}  // namespace request

namespace relay {

void write(const Signal& message, json& json) { json["signal"] = message.signal; }

Result<Signal> read(const json& json, std::type_identity<Signal>) {
  return Signal{TRY(signal_number(json))};
}

void write(const Resize& message, json& json) {
  json["rows"] = message.rows;
  json["cols"] = message.cols;
}

Result<Resize> read(const json& json, std::type_identity<Resize>) {
  Resize message;
  message.rows = static_cast<uint16_t>(TRY(fields::integer(json, "rows", 0, 65535)).value_or(24));
  message.cols = static_cast<uint16_t>(TRY(fields::integer(json, "cols", 0, 65535)).value_or(80));
  return message;
}

}  // namespace relay

namespace {

// The line's "op" and the message of that name, read with its fields.
template <typename Variant>
Result<Variant> decode(const json& object) {
  std::string op = TRY(fields::string(object, "op", 64));
  return channel::decode_by_type<Variant>(op, object);
}

Result<Request> read_request(std::string_view line) {
  json object = TRY(parse_object(line));
  Request request{TRY(decode<RequestOp>(object)), 0};
  request.member = static_cast<uint32_t>(
      TRY(fields::integer(object, "member", 0, channel::kMaxProcessId)).value_or(0));
  return request;
}

Result<RelayMessage> read_relay_message(std::string_view line) {
  return decode<RelayMessage>(TRY(parse_object(line)));
}

// The shim is this build's and the user's own process, but its answers are read as carefully.
Result<Reply> read_reply(std::string_view line) {
  json object = TRY(parse_object(line));
  Reply reply;
  if (!TRY(fields::boolean(object, "ok", false))) {
    reply.error = TRY(fields::text(object, "error", 4096));
    if (reply.error->empty()) reply.error = "the shim refused the request";
  }
  reply.member = static_cast<uint32_t>(
      TRY(fields::integer(object, "member", 0, channel::kMaxProcessId)).value_or(0));
  reply.processes = TRY(channel::read_processes(TRY(fields::array(object, "processes"))));
  return reply;
}

Result<Exited> read_exited(std::string_view line) {
  json object = TRY(parse_object(line));
  return Exited{static_cast<int>(TRY(fields::required_integer(object, "exit_code", 0, 255))),
                TRY(fields::boolean(object, "oom_killed", false))};
}

}  // namespace

std::string encode(const Request& request) {
  json line = channel::variant_to_json(request.op, "op");
  if (request.member) line["member"] = request.member;
  return line.dump() + "\n";
}

std::string encode(const RelayMessage& message) {
  return channel::variant_to_json(message, "op").dump() + "\n";
}

std::string encode(const Reply& reply) {
  json line = {{"ok", !reply.error}};
  if (reply.error) line["error"] = *reply.error;
  if (reply.member) line["member"] = reply.member;
  if (!reply.processes.empty()) line["processes"] = channel::write_processes(reply.processes);
  return line.dump() + "\n";
}

std::string encode(const Exited& exited) {
  return json{{"exit_code", exited.exit_code}, {"oom_killed", exited.oom_killed}}.dump() + "\n";
}

Result<Request> parse_request(std::string_view line) {
  return read_request(line).map_error(context("shim socket"));
}

Result<RelayMessage> parse_relay_message(std::string_view line) {
  return read_relay_message(line).map_error(context("shim socket"));
}

Result<Reply> parse_reply(std::string_view line) {
  return read_reply(line).map_error(context("shim socket"));
}

Result<Exited> parse_exited(std::string_view line) {
  return read_exited(line).map_error(context("shim socket"));
}

}  // namespace vessel::control

#include "common/channel/host_messages.h"

#include "common/base64.h"
#include "common/channel/fields.h"

namespace vessel::channel {

using nlohmann::json;

namespace {

constexpr size_t kMaxBinds = 1024;
constexpr size_t kMaxBindText = 4096;

Result<GuestBind> read_bind(const json& entry) {
  if (!entry.is_object()) return fail(EPROTO, "a bind is not an object");
  GuestBind bind;
  bind.destination = TRY(fields::string(entry, "destination", kMaxBindText));
  if (bind.destination.empty() || bind.destination[0] != '/')
    return fail(EPROTO, "a bind's destination is not an absolute path");
  bind.readonly = TRY(fields::boolean(entry, "readonly", false));
  bind.share = TRY(fields::string(entry, "share", 64));
  bind.path = TRY(fields::string(entry, "path", kMaxBindText));
  bind.file = TRY(fields::string(entry, "file", 32));
  if (auto size = TRY(fields::integer(entry, "tmpfs_size", 0, INT64_MAX)))
    bind.tmpfs_size = static_cast<uint64_t>(*size);
  if (std::string device = TRY(fields::string(entry, "device", 1)); !device.empty()) {
    if (device != "c" && device != "b") return fail(EPROTO, "a bind's device is not c or b");
    bind.device = device[0];
    bind.major = static_cast<uint32_t>(TRY(fields::integer(entry, "major", 0, 0xfff)).value_or(0));
    bind.minor =
        static_cast<uint32_t>(TRY(fields::integer(entry, "minor", 0, 0xfffff)).value_or(0));
  }
  return bind;
}

constexpr size_t kMaxInterfaces = 16;
constexpr size_t kMaxAddresses = 64;
constexpr size_t kMaxRoutes = 256;

// A list under `key` of at most `max` entries, each read by `read_one`.
template <typename T, typename Read>
Result<std::vector<T>> read_list(const json& parent, const char* key, size_t max, Read read_one) {
  json list = TRY(fields::array(parent, key));
  if (list.size() > max)
    return fail(EPROTO,
                std::string("\"") + key + "\" is not a list of at most " + std::to_string(max));
  std::vector<T> out;
  for (const auto& entry : list) {
    if (!entry.is_object())
      return fail(EPROTO, std::string("an entry of \"") + key + "\" is not an object");
    out.push_back(TRY(read_one(entry)));
  }
  return out;
}

Result<std::string> family(const json& entry) {
  std::string family = TRY(fields::string(entry, "family", 8));
  if (family.empty()) return std::string("inet");
  if (family != "inet" && family != "inet6") return fail(EPROTO, "a family is not inet or inet6");
  return family;
}

Result<GuestAddress> read_address(const json& entry) {
  return GuestAddress{
      TRY(family(entry)), TRY(fields::string(entry, "address", 64)),
      static_cast<unsigned>(TRY(fields::integer(entry, "prefix", 0, 128)).value_or(0))};
}

Result<GuestInterface> read_interface(const json& entry) {
  GuestInterface interface;
  interface.name = TRY(fields::string(entry, "name", 15));
  if (interface.name.empty()) interface.name = "eth0";
  interface.mac = TRY(fields::string(entry, "mac", 32));
  interface.mtu =
      static_cast<unsigned>(TRY(fields::integer(entry, "mtu", 68, 65535)).value_or(1500));
  interface.addresses =
      TRY(read_list<GuestAddress>(entry, "addresses", kMaxAddresses, read_address));
  return interface;
}

Result<GuestRoute> read_route(const json& entry) {
  GuestRoute route;
  route.family = TRY(family(entry));
  route.destination = TRY(fields::string(entry, "destination", 64));
  if (route.destination.empty()) route.destination = "default";
  route.gateway = TRY(fields::string(entry, "gateway", 64));
  route.device = TRY(fields::string(entry, "device", 15));
  return route;
}

}  // namespace

json write_network(const GuestNetwork& network) {
  json interfaces = json::array(), routes = json::array();
  for (const auto& interface : network.interfaces) {
    json addresses = json::array();
    for (const auto& address : interface.addresses)
      addresses.push_back(
          {{"family", address.family}, {"address", address.address}, {"prefix", address.prefix}});
    interfaces.push_back({{"name", interface.name},
                          {"mac", interface.mac},
                          {"mtu", interface.mtu},
                          {"addresses", addresses}});
  }
  for (const auto& route : network.routes)
    routes.push_back({{"family", route.family},
                      {"destination", route.destination},
                      {"gateway", route.gateway},
                      {"device", route.device}});
  return {{"interfaces", interfaces}, {"routes", routes}};
}

Result<GuestNetwork> read_network(const json& object) {
  if (object.is_null()) return GuestNetwork{};
  if (!object.is_object()) return fail(EPROTO, "\"network\" is not an object");
  return GuestNetwork{
      TRY(read_list<GuestInterface>(object, "interfaces", kMaxInterfaces, read_interface)),
      TRY(read_list<GuestRoute>(object, "routes", kMaxRoutes, read_route))};
}

json write_binds(const std::vector<GuestBind>& binds) {
  json list = json::array();
  for (const auto& bind : binds) {
    json entry = {{"destination", bind.destination}, {"readonly", bind.readonly}};
    if (!bind.share.empty()) entry["share"] = bind.share;
    if (!bind.path.empty()) entry["path"] = bind.path;
    if (!bind.file.empty()) entry["file"] = bind.file;
    if (bind.tmpfs_size) entry["tmpfs_size"] = *bind.tmpfs_size;
    if (bind.device) {
      entry["device"] = std::string(1, *bind.device);
      entry["major"] = bind.major;
      entry["minor"] = bind.minor;
    }
    list.push_back(std::move(entry));
  }
  return list;
}

Result<std::vector<GuestBind>> read_binds(const json& list) {
  if (list.is_null()) return std::vector<GuestBind>{};
  if (!list.is_array() || list.size() > kMaxBinds)
    return fail(EPROTO, "\"binds\" is not a list of at most " + std::to_string(kMaxBinds));
  std::vector<GuestBind> binds;
  for (const auto& entry : list) binds.push_back(TRY(read_bind(entry)));
  return binds;
}

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
    error.message = std::string("\"") + key + "\" is not base64";
    return error;
  });
}

}  // namespace

void write(const Create& message, json& json) {
  json["spec"] = message.spec;
  json["network"] = write_network(message.network);
  json["binds"] = write_binds(message.binds);
  json["seccomp"] = base64_encode(message.seccomp);
  json["watch_ports"] = message.watch_ports;
}

Result<Create> read(const json& json, std::type_identity<Create>) {
  Create message;
  message.spec = TRY(fields::object(json, "spec"));
  if (message.spec.is_null()) return fail(EPROTO, "a create without a spec");
  message.network = TRY(read_network(TRY(fields::object(json, "network"))));
  message.binds = TRY(read_binds(TRY(fields::array(json, "binds"))));
  message.seccomp = TRY(bytes(json, "seccomp"));
  message.watch_ports = TRY(fields::boolean(json, "watch_ports", false));
  return message;
}

void write(const CreateMember& message, json& json) {
  json["member"] = message.member;
  json["root"] = message.root;
  json["spec"] = message.spec;
  json["binds"] = write_binds(message.binds);
  json["seccomp"] = base64_encode(message.seccomp);
}

Result<CreateMember> read(const json& json, std::type_identity<CreateMember>) {
  CreateMember message;
  message.member = TRY(process_id(json, "member"));
  message.root = TRY(fields::string(json, "root", 255));
  message.spec = TRY(fields::object(json, "spec"));
  if (message.spec.is_null()) return fail(EPROTO, "a create without a spec");
  message.binds = TRY(read_binds(TRY(fields::array(json, "binds"))));
  message.seccomp = TRY(bytes(json, "seccomp"));
  return message;
}

void write(const Start& message, json& json) {
  json["container"] = message.container;
  if (message.network) json["network"] = write_network(*message.network);
}

Result<Start> read(const json& json, std::type_identity<Start>) {
  Start message{TRY(container_id(json)), std::nullopt};
  if (json.contains("network")) message.network = TRY(read_network(json["network"]));
  return message;
}

void write(const Exec& message, json& json) {
  json["exec"] = message.id;
  json["container"] = message.container;
  json["process"] = message.process;
}

Result<Exec> read(const json& json, std::type_identity<Exec>) {
  Exec message{TRY(process_id(json, "exec")), TRY(container_id(json)),
               TRY(fields::object(json, "process"))};
  if (message.process.is_null()) return fail(EPROTO, "an exec without a process");
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
  if (macs.size() > kMaxMacs) return fail(EPROTO, "too many MACs");
  for (const auto& mac : macs) {
    if (!mac.is_string() || mac.get_ref<const std::string&>().size() > 32)
      return fail(EPROTO, "a MAC is not a short string");
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

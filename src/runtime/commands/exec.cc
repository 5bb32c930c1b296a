#include "runtime/exec.h"

#include <nlohmann/json.hpp>

#include "common/sys.h"
#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

namespace {

using nlohmann::json;

Result<uint32_t> id_number(const std::string& text, const std::string& flag) {
  if (text.empty() || text.size() > 10 ||
      text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoull(text) > 0xffffffffULL)
    return fail("vessel exec: " + flag + " " + text + " is not a number");
  return static_cast<uint32_t>(std::stoull(text));
}

// As runc: the container's own process (its environment, user, capabilities, limits) with the
// command and what the flags change.
Result<json> process_from_flags(const ArgumentParser& parser, const json& container_process,
                                std::vector<std::string> command) {
  json process = container_process.is_object() ? container_process : json::object();
  process["args"] = std::move(command);
  if (parser.has("cwd")) process["cwd"] = parser.value("cwd");
  if (!process.contains("cwd")) process["cwd"] = "/";
  process["terminal"] = parser.has("tty");
  if (!process.contains("env") || !process["env"].is_array()) process["env"] = json::array();
  for (const auto& variable : parser.values("env")) process["env"].push_back(variable);
  if (!process.contains("user") || !process["user"].is_object())
    process["user"] = {{"uid", 0}, {"gid", 0}};
  if (parser.has("user")) {
    std::string user = parser.value("user");
    size_t colon = user.find(':');
    process["user"]["uid"] = TRY(id_number(user.substr(0, colon), "--user"));
    if (colon != std::string::npos)
      process["user"]["gid"] = TRY(id_number(user.substr(colon + 1), "--user"));
  }
  for (const auto& gid : parser.values("additional-gids")) {
    if (!process["user"].contains("additionalGids"))
      process["user"]["additionalGids"] = json::array();
    process["user"]["additionalGids"].push_back(TRY(id_number(gid, "--additional-gids")));
  }
  for (const auto& cap : parser.values("cap")) {
    std::string name = cap.starts_with("CAP_") ? cap : "CAP_" + cap;
    json& caps = process["capabilities"];
    for (const char* set : {"bounding", "effective", "permitted"}) caps[set].push_back(name);
    // Ambient needs inheritable: only where the spec already has some (as runc).
    if (caps.contains("inheritable") && caps["inheritable"].is_array())
      caps["ambient"].push_back(name);
  }
  if (parser.has("no-new-privs")) process["noNewPrivileges"] = true;
  return process;
}

}  // namespace

// `exec [--process FILE | ID ARGS...] [runc's flags] ID`
Result<int> command_exec(Context& context, const Arguments& args) {
  ArgumentParser parser("exec", args);
  TRY(parser.parse({"process|p", "pid-file", "console-socket", "cwd", "preserve-fds", "env|e",
                    "user|u", "additional-gids|g", "cap|c", "apparmor", "process-label", "cgroup"},
                   {"detach|d", "tty|t", "no-new-privs", "ignore-paused"},
                   ArgumentParser::StopAt::FirstPositional));
  TRY(refuse_preserved_fds(parser));
  for (const char* flag : {"apparmor", "process-label"})
    if (!parser.value(flag).empty())
      return fail(std::string("vessel exec: --") + flag + " " + parser.value(flag) +
                  ": the guest kernel has no " + (flag[0] == 'a' ? "AppArmor" : "SELinux") +
                  " to apply it with (vessel features says so); leave it out");
  if (parser.has("cgroup"))
    return fail(
        "vessel exec: --cgroup: the process runs in the container's own cgroup in the "
        "guest; leave it out");
  if (parser.positional().empty())
    return fail("vessel exec: expects a container id (see vessel --help)");
  ExecRequest request;
  request.id = parser.positional()[0];
  request.console_socket = parser.value("console-socket");
  request.pid_file = parser.value("pid-file");
  request.detach = parser.has("detach");
  ContainerState state = TRY(context.store.load(request.id));
  // runc's --ignore-paused starts a process frozen in a frozen cgroup; a paused container's whole
  // VM is stopped, so nothing can start in it until it is resumed, with the flag or without.
  if (state.effective_status() == Status::Paused)
    return fail("cannot exec in container \"" + request.id +
                "\": it is paused, and its whole VM with it: resume it first");
  if (parser.has("process")) {
    request.process_json = TRY(sys::read_file(parser.value("process"), 1 << 20));
  } else {
    std::vector<std::string> command(parser.positional().begin() + 1, parser.positional().end());
    if (command.empty()) return fail("vessel exec: give --process FILE or a command after the id");
    auto spec = bundle_spec(state.bundle);
    json container_process = spec ? spec->document.value("process", json::object()) : json();
    request.process_json = TRY(process_from_flags(parser, container_process, command)).dump();
  }
  return exec_in_container(context.store, request);
}

}  // namespace vessel::runtime

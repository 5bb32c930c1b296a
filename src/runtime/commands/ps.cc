#include <cstdio>
#include <nlohmann/json.hpp>

#include "runtime/commands/command.h"
#include "runtime/shim_client.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

// `ps [--format table|json] ID`, as runc has it. The container's processes live in its guest:
// the agent lists them, with pids as the container's own pid namespace numbers them (runc prints
// host pids; a VM's processes have none). `--format json` prints the pids as a JSON array.
Result<int> command_ps(Context& context, const Arguments& args) {
  ArgumentParser parser("ps", args);
  TRY(parser.parse({"format|f"}, {}, ArgumentParser::StopAt::FirstPositional));
  std::string id = TRY(parser.id(64));
  if (parser.positional().size() > 1)
    return fail(
        "ps options are not supported: the container's processes run in its VM, where the host's "
        "ps cannot see them; use `podman exec " +
        id + " ps ...` instead");
  std::string format = parser.value("format", "table");
  if (format != "table" && format != "json")
    return fail("ps --format must be table or json, not \"" + format + "\"");
  ContainerState state = TRY(context.store.load(id));
  if (state.effective_status() != Status::Running && state.effective_status() != Status::Paused)
    return fail("cannot list the processes of container \"" + id + "\": it is " +
                std::string(status_name(state.effective_status())));
  control::Reply reply =
      TRY(shim_request(context.store, state, control::request::ListProcesses{},
                       std::chrono::seconds(20))
              .map_error(vessel::context("listing the processes of \"" + id + "\"")));
  if (format == "json") {
    nlohmann::json pids = nlohmann::json::array();
    for (const auto& process : reply.processes) pids.push_back(process.pid);
    std::printf("%s\n", pids.dump().c_str());
    return 0;
  }
  std::printf("%-8s %-8s %-8s %s\n", "UID", "PID", "PPID", "CMD");
  for (const auto& process : reply.processes)
    std::printf("%-8u %-8u %-8u %s\n", process.uid, process.pid, process.ppid,
                process.command.c_str());
  return 0;
}

}  // namespace vessel::runtime

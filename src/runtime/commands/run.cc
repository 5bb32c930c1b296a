#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

// create + start, then (unless --detach) wait for the container and delete it, exiting with its
// status.
Result<int> command_run(Context& context, const Arguments& args) {
  ArgumentParser parser("run", args);
  context.warnings_on_stderr = true;
  TRY(parser.parse({"bundle|b", "pid-file", "console-socket", "preserve-fds"},
                   {"detach|d", "no-pivot", "no-new-keyring"}));
  TRY(refuse_preserved_fds(parser));
  CreateRequest request{TRY(parser.id()), parser.value("bundle", "."), parser.value("pid-file"),
                        parser.value("console-socket"), context.keep_fd5};
  Config config = TRY(load_config());
  auto warn = [&](const std::string& line) { context.warn(line); };
  ChildProcess shim = TRY(create_container(context.store, config, request, warn));
  if (auto started = start_container(context.store, request.id, warn); !started) {
    shim = ChildProcess();
    (void)delete_container(context.store, request.id, true, warn);
    return tl::unexpected(started.error());
  }
  if (parser.has("detach")) {
    shim.release();
    return 0;
  }
  int status = TRY(shim.wait());
  TRY(delete_container(context.store, request.id, true, warn));
  return exit_code_from_status(status);
}

}  // namespace vessel::runtime

#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

Result<int> command_create(Context& context, const Arguments& args) {
  ArgumentParser parser("create", args);
  TRY(parser.parse({"bundle|b", "pid-file", "console-socket", "preserve-fds"},
                   {"no-pivot", "no-new-keyring"}));
  TRY(refuse_preserved_fds(parser));
  CreateRequest request{TRY(parser.id()), parser.value("bundle", "."), parser.value("pid-file"),
                        parser.value("console-socket"), context.keep_fd5};
  Config config = TRY(load_config());
  auto warn = [&](const std::string& line) { context.warn(line); };
  ChildProcess shim = TRY(create_container(context.store, config, request, warn));
  shim.release();  // it lives on as the container; conmon reaps it
  return 0;
}

}  // namespace vessel::runtime

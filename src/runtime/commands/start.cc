#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

Result<int> command_start(Context& context, const Arguments& args) {
  ArgumentParser parser("start", args);
  TRY(parser.parse({}, {}));
  auto warn = [&](const std::string& line) { context.warn(line); };
  TRY(start_container(context.store, TRY(parser.id()), warn));
  return 0;
}

}  // namespace vessel::runtime

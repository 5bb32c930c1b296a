#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

Result<int> command_delete(Context& context, const Arguments& args) {
  ArgumentParser parser("delete", args);
  TRY(parser.parse({}, {"force|f"}));
  auto warn = [&](const std::string& line) { context.warn(line); };
  TRY(delete_container(context.store, TRY(parser.id()), parser.has("force"), warn));
  return 0;
}

}  // namespace vessel::runtime

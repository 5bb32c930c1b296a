#include <cstdio>

#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

Result<int> command_state(Context& context, const Arguments& args) {
  ArgumentParser parser("state", args);
  TRY(parser.parse({}, {}));
  std::string state = TRY(container_state_json(context.store, TRY(parser.id())));
  std::printf("%s\n", state.c_str());
  return 0;
}

}  // namespace vessel::runtime

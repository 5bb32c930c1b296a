#include <signal.h>

#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

// `kill [--all] ID [SIGNAL]`: --all is accepted; the container's processes all live in one VM.
Result<int> command_kill(Context& context, const Arguments& args) {
  ArgumentParser parser("kill", args);
  TRY(parser.parse({}, {"all|a"}));
  std::string id = TRY(parser.id(1));
  int signal = parser.positional().size() > 1 ? TRY(parse_signal(parser.positional()[1])) : SIGTERM;
  TRY(kill_container(context.store, id, signal));
  return 0;
}

}  // namespace vessel::runtime

namespace vessel::runtime {

Result<int> command_pause(Context& context, const Arguments& args) {
  ArgumentParser parser("pause", args);
  TRY(parser.parse({}, {}));
  TRY(pause_container(context.store, TRY(parser.id()), true));
  return 0;
}

Result<int> command_resume(Context& context, const Arguments& args) {
  ArgumentParser parser("resume", args);
  TRY(parser.parse({}, {}));
  TRY(pause_container(context.store, TRY(parser.id()), false));
  return 0;
}

}  // namespace vessel::runtime

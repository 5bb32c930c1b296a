#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

Result<int> command_delete(Context& context, const Arguments& args) {
  ArgumentParser parser("delete", args);
  TRY(parser.parse({}, {"force|f"}));
  TRY(delete_container(context.store, TRY(parser.id()), parser.has("force")));
  return 0;
}

}  // namespace vessel::runtime

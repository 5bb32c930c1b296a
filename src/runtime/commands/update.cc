#include <unistd.h>

#include "common/sys.h"
#include "runtime/commands/command.h"
#include "runtime/container.h"

namespace vessel::runtime {

// `update --resources FILE|- ID`, as Podman calls it (`podman update`): the new limits are
// applied to the container's cgroup inside the guest.
Result<int> command_update(Context& context, const Arguments& args) {
  ArgumentParser parser("update", args);
  TRY(parser.parse({"resources|r"}, {}));
  std::string id = TRY(parser.id());
  std::string file = parser.value("resources");
  if (file.empty())
    return fail("update needs --resources FILE (a LinuxResources JSON object, or - for stdin)");
  std::string text = file == "-" ? TRY(sys::read_to_end(STDIN_FILENO, 1 << 20))
                                 : TRY(sys::read_file(file, 1 << 20));
  TRY(update_container(context.store, id, text));
  return 0;
}

}  // namespace vessel::runtime

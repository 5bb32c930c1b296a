// vessel-shim STATE_DIR: started by `vessel create` (or `run`) for one container. Its pid is the
// container's for conmon: it exits with the container's exit status.
//   fd 0-2: the container's stdio   fd 3: the ready pipe   fd 5: kept open (slirp4netns' exit pipe)
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/sys.h"
#include "shim/sandbox.h"

using namespace vessel;

constexpr int kReadyFd = 3;

int main(int argc, char** argv) {
  if (argc != 2) {
    ::dprintf(2, "usage: vessel-shim STATE_DIR (started by vessel create, not by hand)\n");
    return 2;
  }
  std::string state_dir = argv[1];
  // Hold no directory of the caller's (the bundle, a mount point) busy while the container lives.
  if (::chdir("/") < 0) return 1;
  UniqueFd ready(kReadyFd);
  auto log_fd = sys::open(state_dir + "/shim.log", O_WRONLY | O_CREAT | O_APPEND, 0600);
  auto options = shim::load_options(state_dir + "/shim.json");
  log::init("vessel-shim", log_fd ? log_fd->release() : -1,
            options && options->debug ? log::Level::Debug : log::Level::Info);
  if (!options) {
    std::string report = nlohmann::json{{"ok", false}, {"error", options.error().message}}.dump();
    (void)sys::write_all(ready.get(), report);
    return 1;
  }
  return shim::run_sandbox(*options, std::move(ready));
}

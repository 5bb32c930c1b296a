// vessel-shim STATE_DIR: started by `vessel create` (or `run`) for one container, as pid 1 of its
// own pid namespace and in a mount namespace of its own. Its pid is the container's for conmon: it
// exits with the container's exit status.
//   fd 0-2: the container's stdio   fd 3: the ready pipe   fd 5: kept open (slirp4netns' exit pipe)
// vessel-shim --build-template REQUEST: makes a VM template (shim/template.h), in the background
// of the `vessel create` that found none; logs to the templates' directory.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/capped_file.h"
#include "common/log.h"
#include "common/sys.h"
#include "shim/boot.h"
#include "shim/sandbox.h"
#include "shim/template.h"

using namespace vessel;

constexpr int kReadyFd = 3;

namespace {

int build_template(const std::string& text) {
  ::setsid();
  if (::chdir("/") < 0) return 1;
  auto request = nlohmann::json::parse(text, nullptr, false);
  if (!request.is_object()) return 2;
  std::string dir = request.value("dir", "");
  if (auto made = sys::make_private_dir(dir); !made) return 1;
  auto dir_fd = sys::open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW);
  if (!dir_fd) return 1;
  if (auto log_file = CappedFile::create(dir_fd->get(), "builder.log", 256 << 10))
    log::init_capped("vessel-shim", std::move(*log_file), log::Level::Info);
  return shim::build_template(request);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--build-template") return build_template(argv[2]);
  if (argc != 2) {
    ::dprintf(2, "usage: vessel-shim STATE_DIR (started by vessel create, not by hand)\n");
    return 2;
  }
  std::string state_dir = argv[1];
  UniqueFd ready(kReadyFd);
  auto report_failure = [&](const std::string& message) {
    (void)sys::write_all(ready.get(), nlohmann::json{{"ok", false}, {"error", message}}.dump());
    return 1;
  };
  // A session of its own, as runc's container init has: conmon ends a --timeout by killing the
  // container's process group, which must not be conmon's own.
  ::setsid();
  // Hold no directory of the caller's (the bundle, a mount point) busy while the container lives.
  if (::chdir("/") < 0) return report_failure("chdir /: " + std::string(std::strerror(errno)));
  auto dir = sys::open(state_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW);
  if (!dir) return report_failure(dir.error().message);
  auto options = shim::load_options(state_dir + "/shim.json");
  auto level = options && options->debug ? log::Level::Debug : log::Level::Info;
  if (auto log_file = CappedFile::create(dir->get(), "shim.log", shim::kShimLogCap))
    log::init_capped("vessel-shim", std::move(*log_file), level);
  else
    log::init("vessel-shim", -1, level);
  if (!options) return report_failure(options.error().message);
  return shim::run_sandbox(*options, std::move(*dir), std::move(ready));
}

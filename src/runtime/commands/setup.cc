#include <cstdio>

#include "common/sys.h"
#include "runtime/commands/command.h"
#include "runtime/podman_config.h"

namespace vessel::runtime {

// `setup --user [--default]`: register vessel in the user's containers.conf so `--runtime=vessel`
// works by name; with --default, vessel becomes the user's default runtime (plain `podman run`).
Result<int> command_setup(Context&, const Arguments& args) {
  ArgumentParser parser("setup", args);
  TRY(parser.parse({}, {"user", "default"}));
  if (!parser.has("user") || !parser.positional().empty())
    return fail("vessel setup: give --user to register vessel in your own containers.conf");
  std::string path = user_containers_conf_path();
  std::string existing = sys::exists(path) ? TRY(sys::read_file(path)) : "";
  std::string vessel_path = sys::executable_dir() + "/vessel";
  bool make_default = parser.has("default");
  std::string updated = TRY(register_runtime(existing, vessel_path, path, make_default));
  TRY(sys::mkdir_p(path.substr(0, path.rfind('/'))));
  if (!existing.empty()) TRY(sys::write_file_atomic(path + ".before-vessel", existing, 0644));
  TRY(sys::write_file_atomic(path, updated, 0644));
  std::printf("registered %s as runtime \"vessel\"%s in %s%s\nnow: podman run %sIMAGE CMD\n",
              vessel_path.c_str(), make_default ? ", the default" : "", path.c_str(),
              existing.empty()
                  ? ""
                  : (" (the previous file is kept as " + path + ".before-vessel)").c_str(),
              make_default ? "" : "--runtime=vessel ");
  return 0;
}

}  // namespace vessel::runtime

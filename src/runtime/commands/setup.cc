#include <cstdio>

#include "common/sys.h"
#include "runtime/check.h"
#include "runtime/commands/command.h"
#include "runtime/podman_config.h"

namespace vessel::runtime {

// `setup --user [--default]`: register vessel in the user's containers.conf so `--runtime=vessel`
// works by name; with --default, vessel becomes the user's default runtime (plain `podman run`).
Result<int> command_setup(Context& context, const Arguments& args) {
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
  // What only root can fix is printed as commands, for the user to run or hand on.
  std::vector<std::string> root_fixes;
  if (auto config = load_config()) {
    CheckInputs inputs{*config, context.store.root()};
    inputs.boot_probes = false;
    for (const auto& verdict : run_checks(inputs))
      if (verdict.status != Verdict::Status::Ok && verdict.fix.starts_with("sudo "))
        root_fixes.push_back(verdict.name + ": " + verdict.detail + "\n    " + verdict.fix);
  }
  if (!root_fixes.empty()) {
    std::printf("still to do, as root:\n");
    for (const auto& fix : root_fixes) std::printf("  %s\n", fix.c_str());
  }
  return 0;
}

}  // namespace vessel::runtime

#include <cstdio>

#include "common/sys.h"
#include "runtime/check.h"
#include "runtime/commands/command.h"
#include "runtime/containerd_config.h"
#include "runtime/podman_config.h"

namespace vessel::runtime {

namespace {

// Writes `updated` to `path`, keeping what was there as PATH.before-vessel; returns the words
// that say where the previous file went ("" when there was none).
Result<std::string> replace_config(const std::string& path, const std::string& existing,
                                   const std::string& updated) {
  TRY(sys::mkdir_p(path.substr(0, path.rfind('/'))));
  if (!existing.empty()) TRY(sys::write_file_atomic(path + ".before-vessel", existing, 0644));
  TRY(sys::write_file_atomic(path, updated, 0644));
  return existing.empty() ? std::string()
                          : " (the previous file is kept as " + path + ".before-vessel)";
}

// `setup --containerd [--default] [--config PATH]`: vessel as the CRI handler "vessel".
Result<int> setup_containerd(const ArgumentParser& parser) {
  std::string path = parser.value("config", kContainerdConfig);
  std::string existing = sys::exists(path) ? TRY(sys::read_file(path)) : "";
  std::string vessel_path = sys::executable_dir() + "/vessel";
  auto registration =
      TRY(register_containerd_handler(existing, vessel_path, path, parser.has("default")));
  std::string kept = TRY(replace_config(path, existing, registration.text));
  std::printf("registered %s as containerd's CRI runtime handler \"vessel\" in %s%s\n",
              vessel_path.c_str(), path.c_str(), kept.c_str());
  for (const auto& change : registration.changes) std::printf("  %s\n", change.c_str());
  std::printf(
      "now: systemctl restart containerd; a pod runs in a VM with a RuntimeClass whose handler "
      "is vessel (docs/kubernetes.md)\n");
  return 0;
}

}  // namespace

// `setup --user [--default]`: register vessel in the user's containers.conf so `--runtime=vessel`
// works by name; with --default, vessel becomes the user's default runtime (plain `podman run`).
// `setup --containerd`: see setup_containerd.
Result<int> command_setup(Context& context, const Arguments& args) {
  ArgumentParser parser("setup", args);
  TRY(parser.parse({"config"}, {"user", "containerd", "default"}));
  if (parser.has("user") == parser.has("containerd") || !parser.positional().empty())
    return fail(
        "vessel setup: give --user to register vessel in your own containers.conf, or "
        "--containerd (as root) to register it as containerd's CRI runtime handler");
  if (parser.has("containerd")) return setup_containerd(parser);
  if (parser.has("config"))
    return fail(
        "vessel setup: --config names containerd's configuration: give it with --containerd");
  std::string path = user_containers_conf_path();
  std::string existing = sys::exists(path) ? TRY(sys::read_file(path)) : "";
  std::string vessel_path = sys::executable_dir() + "/vessel";
  bool make_default = parser.has("default");
  std::string updated = TRY(register_runtime(existing, vessel_path, path, make_default));
  std::string kept = TRY(replace_config(path, existing, updated));
  std::printf("registered %s as runtime \"vessel\"%s in %s%s\nnow: podman run %sIMAGE CMD\n",
              vessel_path.c_str(), make_default ? ", the default" : "", path.c_str(), kept.c_str(),
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

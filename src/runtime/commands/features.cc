#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/channel/messages.h"
#include "common/oci_spec.h"
#include "runtime/commands/command.h"

namespace vessel::runtime {

// `features`: the OCI runtime features document (runtime-spec features.md), what this build
// honours inside its VMs.
Result<int> command_features(Context&, const Arguments& args) {
  ArgumentParser parser("features", args);
  TRY(parser.parse({}, {}));
  using nlohmann::json;
  json features = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.1.0"},
      // createContainer and startContainer hooks would have to run inside the VM.
      {"hooks", {"prestart", "createRuntime", "poststart", "poststop"}},
      {"mountOptions", {"ro",     "rw",     "nosuid",     "suid",        "nodev",   "dev",
                        "noexec", "exec",   "relatime",   "strictatime", "noatime", "sync",
                        "bind",   "rbind",  "private",    "rprivate",    "shared",  "rshared",
                        "slave",  "rslave", "unbindable", "runbindable"}},
      {"linux",
       // user: made in the guest from the spec's mappings (agent/identity.h).
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}},
        {"capabilities", oci::capability_names()},
        {"cgroup", {{"v1", false}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions",
           {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"}},
          {"operators",
           {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
            "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}},
          {"archs", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}}}},
      {"annotations",
       {{"io.github.vessel.version", std::string(channel::build_version())},
        {"io.github.vessel.isolation", "vm"}}}};
  std::printf("%s\n", features.dump(2).c_str());
  return 0;
}

}  // namespace vessel::runtime

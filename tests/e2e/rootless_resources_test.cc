// Resources for an unprivileged user, vessel run inside the user's Podman user namespace: memory,
// pids and CPU limits enforced in the guest.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

// Resources for an unprivileged user: the guest enforces them with its own cgroup v2, whatever
// the host's cgroups allow. (Rootless Podman on this host's cgroup v1 drops --memory and friends
// before a runtime sees them, for runc as for vessel; so the bundle is given to vessel directly,
// inside the user's Podman user namespace, as rootless Podman runs it.)
TEST_F(RootlessTest, ResourcesAreEnforcedInTheGuestForAnUnprivilegedUser) {
  std::string bundle = "/tmp/vessel-rootless-resources";
  sh("rm -rf " + bundle);
  make_busybox_bundle(bundle, {"sh", "-c",
                               "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; nproc; "
                               "x=a; while :; do x=$x$x; done"});
  auto config = nlohmann::json::parse(std::ifstream(bundle + "/config.json"));
  config["linux"]["resources"] = {{"memory", {{"limit", 48 << 20}}},
                                  {"pids", {{"limit", 40}}},
                                  {"cpu", {{"quota", 200000}, {"period", 100000}}}};
  config["mounts"].push_back({{"destination", "/sys/fs/cgroup"},
                              {"type", "cgroup"},
                              {"source", "cgroup"},
                              {"options", {"nosuid", "noexec", "nodev"}}});
  std::ofstream(bundle + "/config.json") << config.dump();
  sh("chown -R " + std::string(kUser) + " " + bundle);
  auto result = as_user(kUser, "podman unshare " + prefix() + "/bin/vessel --root /tmp/vessel-rr-" +
                                   uid_of(kUser) + " run --bundle " + bundle + " limited");
  // A string that doubles until it passes 48 MiB: killed by the guest's OOM killer. (One that
  // grows a little at a time can make the guest reclaim the program's own pages over and over
  // for minutes before the OOM killer acts, as on any host.)
  EXPECT_EQ(result.exit_code, 137) << "OOM-killed over 48 MiB: " << result.err;
  EXPECT_EQ(result.out, "50331648\n40\n2\n") << result.err;
  sh("rm -rf " + bundle);
  expect_nothing_left();
}

}  // namespace vessel::test

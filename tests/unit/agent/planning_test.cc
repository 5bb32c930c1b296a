// The agent's planning, apart from the guest it acts on: what a spec's resources write to the
// container's cgroup, how mount options become mount(2)'s flags and data, the id maps of the
// container's user namespace, and the device rules runc would enforce.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include "agent/cgroup.h"
#include "agent/device_filter.h"
#include "agent/identity.h"
#include "agent/mounts.h"

namespace vessel::agent {

namespace {

std::map<std::string, std::string> settings_of(const oci::Resources& resources) {
  std::map<std::string, std::string> out;
  for (const auto& setting : cgroup_settings(resources)) out[setting.file] = setting.value;
  return out;
}

}  // namespace

TEST(CgroupPlanTest, LimitsAsRuncConvertsThemToCgroupV2) {
  oci::Resources resources;
  EXPECT_TRUE(cgroup_settings(resources).empty()) << "no limit, no file written";
  resources.memory_limit = 64 << 20;
  resources.memory_swap = 96 << 20;
  resources.pids_limit = 32;
  resources.cpu_quota = 50000;
  resources.cpu_period = 100000;
  resources.cpuset_cpus = "0-1";
  auto settings = settings_of(resources);
  EXPECT_EQ(settings["memory.max"], std::to_string(64 << 20));
  EXPECT_EQ(settings["memory.swap.max"], std::to_string(32 << 20)) << "memory + swap less memory";
  EXPECT_EQ(settings["pids.max"], "32");
  EXPECT_EQ(settings["cpu.max"], "50000 100000");
  EXPECT_EQ(settings["cpuset.cpus"], "0-1");
  // -1 and 0 mean no limit, as runc reads them; a quota without a period keeps the default.
  oci::Resources unlimited;
  unlimited.memory_limit = -1;
  unlimited.memory_swap = -1;
  unlimited.pids_limit = 0;
  unlimited.cpu_quota = -1;
  settings = settings_of(unlimited);
  EXPECT_EQ(settings["memory.max"], "max");
  EXPECT_EQ(settings["memory.swap.max"], "max");
  EXPECT_EQ(settings["pids.max"], "max");
  EXPECT_EQ(settings["cpu.max"], "max 100000");
  // Only swap may fail: a guest kernel without swap accounting still runs the container.
  for (const auto& setting : cgroup_settings(resources))
    EXPECT_EQ(setting.required, setting.file != "memory.swap.max") << setting.file;
}

TEST(MountPlanTest, OptionsBecomeFlagsDataAndPropagation) {
  auto parsed = parse_mount_options({"nosuid", "noexec", "nodev", "ro", "mode=755", "size=65536k"});
  EXPECT_EQ(parsed.flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY));
  EXPECT_EQ(parsed.data, "mode=755,size=65536k");
  EXPECT_EQ(parsed.propagation, "");
  // A later option undoes an earlier one; the last propagation wins; tmpcopyup is Podman's.
  parsed = parse_mount_options({"ro", "rw", "rbind", "rprivate", "rslave", "tmpcopyup"});
  EXPECT_EQ(parsed.flags, static_cast<unsigned long>(MS_BIND | MS_REC));
  EXPECT_EQ(parsed.propagation, "rslave");
  EXPECT_EQ(parsed.data, "");
}

TEST(IdentityPlanTest, MappingsAsTheKernelTakesThem) {
  EXPECT_EQ(map_text({{0, 100000, 65536}, {65536, 1000, 1}}), "0 100000 65536\n65536 1000 1\n");
  oci::Spec spec;
  EXPECT_FALSE(wants_user_namespace(spec));
  spec.namespaces.push_back({"user", ""});
  spec.uid_mappings.push_back({0, 100000, 65536});
  EXPECT_TRUE(wants_user_namespace(spec));
}

TEST(DevicePlanTest, RuncsDefaultsComeLastAndTheSpecsNodesAreAllowed) {
  oci::Spec spec;
  spec.resources.devices.push_back({false, 'a', -1, -1, 7});  // deny all, as Podman writes
  spec.devices.push_back({"/dev/fuse", 'c', 10, 229});
  auto rules = effective_device_rules(spec);
  ASSERT_GE(rules.size(), 3u);
  EXPECT_FALSE(rules.front().allow) << "the spec's own rules first";
  auto fuse = std::find_if(rules.begin(), rules.end(), [](const oci::DeviceRule& rule) {
    return rule.allow && rule.type == 'c' && rule.major == 10 && rule.minor == 229;
  });
  EXPECT_NE(fuse, rules.end()) << "a linux.devices node is allowed";
  auto null = std::find_if(rules.begin(), rules.end(), [](const oci::DeviceRule& rule) {
    return rule.allow && rule.type == 'c' && rule.major == 1 && rule.minor == 3;
  });
  EXPECT_NE(null, rules.end()) << "/dev/null, one of runc's defaults";
  EXPECT_GT(null - rules.begin(), fuse - rules.begin()) << "the defaults come last, and so win";
  EXPECT_FALSE(device_program(rules).empty());
}

}  // namespace vessel::agent

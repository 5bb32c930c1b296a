// The spec's process and linux fields as the guest applies them: user, groups, cwd and env,
// rlimits, sysctls, seccomp, masked paths, id mappings, devices, namespaces and cgroups.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

TEST_F(RuntimeTest, ProcessGetsItsUserGroupsCwdAndEnv) {
  make_busybox_bundle(
      m_bundle,
      {"sh", "-c",
       "id -u; id -g; id -G; pwd; echo $GREETING; touch /tmp/mine; stat -c %u:%g /tmp/mine"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["process"]["user"] = {{"uid", 1000}, {"gid", 1001}, {"additionalGids", {20, 30}}};
  config["process"]["cwd"] = "/tmp";
  config["process"]["env"].push_back("GREETING=hello from the guest");
  std::filesystem::permissions(m_bundle + "/rootfs/tmp", std::filesystem::perms::all);
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "user"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "1000\n1001\n1001 20 30\n/tmp\nhello from the guest\n1000:1001\n");
  struct stat st {};
  ASSERT_EQ(::stat((m_bundle + "/rootfs/tmp/mine").c_str(), &st), 0)
      << "written through 9p to the host";
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
}

TEST_F(RuntimeTest, RlimitsSysctlsNoNewPrivilegesAndMaskedAndReadonlyPaths) {
  make_busybox_bundle(
      m_bundle,
      {"sh", "-c",
       "ulimit -n; cat /proc/sys/net/ipv4/ip_forward; grep NoNewPrivs /proc/self/status; "
       "cat /etc/secret/key; wc -c < /etc/hidden; echo x > /etc/frozen/f || echo frozen"});
  std::filesystem::create_directories(m_bundle + "/rootfs/etc/secret");
  std::filesystem::create_directories(m_bundle + "/rootfs/etc/frozen");
  std::ofstream(m_bundle + "/rootfs/etc/secret/key") << "leaked";
  std::ofstream(m_bundle + "/rootfs/etc/hidden") << "leaked too";
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 321}, {"hard", 654}}};
  config["process"]["noNewPrivileges"] = true;
  config["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  config["linux"]["maskedPaths"] = {"/etc/secret", "/etc/hidden"};
  config["linux"]["readonlyPaths"] = {"/etc/frozen"};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "hardened"});
  EXPECT_EQ(result.out, "321\n1\nNoNewPrivs:\t1\n0\nfrozen\n") << result.err;
}

TEST_F(RuntimeTest, SeccompProfileIsEnforcedInTheGuest) {
  make_busybox_bundle(
      m_bundle, {"sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/made || echo refused"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "filtered"});
  EXPECT_EQ(result.out, "Seccomp:\t2\nrefused\n") << result.err;
  EXPECT_NE(result.err.find("Operation not permitted"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(m_bundle + "/rootfs/tmp/made"));
}

// linux.uidMappings/gidMappings become a user namespace in the guest: ids on the 9p root are the
// host's, the container sees them through the mapping, and what it writes has the mapped owner
// on the host (as with runc). Also linux.devices, rootfsPropagation, oomScoreAdj and swap.
TEST_F(RuntimeTest, MappingsDevicesPropagationOomScoreAdjAndSwapReachTheGuest) {
  make_busybox_bundle(m_bundle,
                      {"sh", "-c",
                       "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
                       "touch /tmp/mine; stat -c %u:%g /tmp/mine; cat /proc/self/oom_score_adj; "
                       "stat -c '%F %t:%T %a %u' /dev/fuse; stat -c %F /dev/pipe; "
                       "grep -c ' / / .*shared:' /proc/self/mountinfo; "
                       "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["linux"]["namespaces"].push_back({{"type", "user"}});
  config["linux"]["namespaces"].push_back({{"type", "cgroup"}});
  config["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  config["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}};
  config["linux"]["devices"] = {
      {{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"fileMode", 0640}},
      {{"path", "/dev/pipe"}, {"type", "p"}}};
  config["linux"]["rootfsPropagation"] = "shared";
  config["linux"]["resources"] = {{"memory", {{"limit", 64 << 20}, {"swap", 96 << 20}}}};
  config["process"]["oomScoreAdj"] = 432;
  // The cgroup mount shows the container's own limits.
  config["mounts"].push_back({{"destination", "/sys/fs/cgroup"},
                              {"type", "cgroup"},
                              {"source", "cgroup"},
                              {"options", {"nosuid", "noexec", "nodev"}}});
  std::filesystem::permissions(m_bundle + "/rootfs/tmp", std::filesystem::perms::all);
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "mapped"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "         0     100000      65536\n         0     200000      65536\n0\n0\n0:0\n432\n"
            "character special file a:e5 640 0\nfifo\n1\n67108864\n33554432\n")
      << result.err;
  struct stat st {};
  ASSERT_EQ(::stat((m_bundle + "/rootfs/tmp/mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u) << "container root is host uid 100000 through the mapping";
  EXPECT_EQ(st.st_gid, 200000u);
  expect_nothing_left("mapped");
}

// A namespace path must be a namespace of its type (the spec's error); only the network
// namespace can be joined, and the refusal of any other says why.
TEST_F(RuntimeTest, NamespacePathsOfTheWrongTypeOrOutsideTheVmAreRefused) {
  make_busybox_bundle(m_bundle, {"true"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  auto with_namespace = [&](const std::string& type, const std::string& path) {
    auto changed = config;
    for (auto& ns : changed["linux"]["namespaces"])
      if (ns["type"] == type) ns["path"] = path;
    std::ofstream(m_bundle + "/config.json") << changed.dump();
    return vessel_cmd({"create", "--bundle", m_bundle, "nspath"});
  };
  auto wrong = with_namespace("ipc", "/proc/self/ns/net");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(wrong.err,
            "vessel: linux.namespaces: /proc/self/ns/net is not a namespace of type ipc\n");
  expect_nothing_left("nspath");
  auto missing = with_namespace("network", "/nonexistent/ns");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(missing.err.starts_with(
      "vessel: linux.namespaces: the network namespace /nonexistent/ns cannot be opened"))
      << missing.err;
  auto outside = with_namespace("uts", "/proc/self/ns/uts");
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_EQ(outside.err,
            "vessel: linux.namespaces: a container in a VM cannot join the uts namespace "
            "/proc/self/ns/uts: it runs on its own kernel; give it a uts namespace of its own, or "
            "run it with runc\n");
  expect_nothing_left("nspath");
}

// The container's pid on the host (the shim) is in a cgroup namespace of its own when the spec
// asks for one, as runc's container process is.
TEST_F(RuntimeTest, TheContainersHostPidHasTheCgroupNamespaceTheSpecAsksFor) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  auto& namespaces = config["linux"]["namespaces"];
  bool asked = false;
  for (const auto& ns : namespaces) asked |= ns["type"] == "cgroup";
  if (!asked) namespaces.push_back({{"type", "cgroup"}});
  std::ofstream(m_bundle + "/config.json") << config.dump();
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "cgns"}).exit_code, 0);
  std::string pid = read_json(vessel_cmd({"state", "cgns"}).out)["pid"].dump();
  auto ns = [](const std::string& who) {
    return std::filesystem::read_symlink("/proc/" + who + "/ns/cgroup").string();
  };
  EXPECT_NE(ns(pid), ns("self"));
  ASSERT_EQ(vessel_cmd({"delete", "--force", "cgns"}).exit_code, 0);
  expect_nothing_left("cgns");
}

// linux.cgroupsPath, absolute or relative to the caller's own cgroup (as runc reads it): the shim
// and QEMU are in it, with the spec's CPU limits; delete removes it.
TEST_F(RuntimeTest, HostCgroupPathsAbsoluteAndRelativeCarryTheCpuLimits) {
  if (!std::filesystem::exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"))
    GTEST_SKIP() << "this test reads cgroup v1's cpu controller, which this host does not mount";
  std::string own = sh("sed -n 's/^[0-9]*:cpu:\\(.*\\)$/\\1/p' /proc/self/cgroup").out;
  own = own.substr(0, own.find('\n'));
  if (own == "/") own = "";
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["linux"]["resources"] = {{"cpu", {{"quota", 30000}, {"period", 100000}, {"shares", 300}}}};
  for (const std::string path : {"/vessel-test-absolute", "vessel-test-relative"}) {
    config["linux"]["cgroupsPath"] = path;
    std::ofstream(m_bundle + "/config.json") << config.dump();
    ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "cg"}).exit_code, 0) << path;
    std::string dir = "/sys/fs/cgroup/cpu" + (path[0] == '/' ? path : own + "/" + path);
    std::string quota, shares;
    std::ifstream(dir + "/cpu.cfs_quota_us") >> quota;
    std::ifstream(dir + "/cpu.shares") >> shares;
    EXPECT_EQ(quota, "30000") << dir;
    EXPECT_EQ(shares, "300") << dir;
    std::string pid = read_json(vessel_cmd({"state", "cg"}).out)["pid"].dump();
    std::string procs = sh("cat " + dir + "/cgroup.procs").out;
    EXPECT_NE(procs.find(pid + "\n"), std::string::npos) << "the shim is in " << dir;
    ASSERT_EQ(vessel_cmd({"delete", "--force", "cg"}).exit_code, 0);
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
    expect_nothing_left("cg");
  }
}

}  // namespace vessel::test

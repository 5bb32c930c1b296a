// Spec fields runc honours, each run from the same bundle under runc and under vessel and the
// results compared: pids limits (N, 0, -1), a CPU quota of -1, domainname, a working directory
// that does not exist, the environment a hook gets, and the sysctl keys runc refuses.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

namespace {

class SpecFieldsTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (::access("/usr/sbin/runc", X_OK) != 0 && ::access("/usr/bin/runc", X_OK) != 0)
      GTEST_SKIP() << "runc is not installed: run scripts/install-deps.sh";
  }

  // The bundle running `script`, its config.json changed by `edit`.
  void bundle(const std::string& script, const std::function<void(nlohmann::json&)>& edit) {
    std::filesystem::remove_all(m_bundle);
    make_busybox_bundle(m_bundle, {"sh", "-c", script});
    auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
    edit(config);
    std::ofstream(m_bundle + "/config.json") << config.dump();
  }

  CommandResult runc(const std::string& id) {
    return run({"runc", "--root", m_dir.path() + "/runc", "run", id},
               {.cwd = m_bundle, .timeout_seconds = 120});
  }

  // Runs the bundle under both; expects the same output and exit code, and returns vessel's.
  CommandResult both(const std::string& id) {
    auto by_runc = runc(id + "-runc");
    auto by_vessel = vessel_cmd({"run", id});
    EXPECT_EQ(by_vessel.exit_code, by_runc.exit_code) << by_vessel.err << " / " << by_runc.err;
    EXPECT_EQ(by_vessel.out, by_runc.out);
    expect_nothing_left(id);
    return by_vessel;
  }
};

}  // namespace

TEST_F(SpecFieldsTest, PidsLimitsAndACpuQuotaOfMinusOneAsWithRunc) {
  // Twenty sleeps under a limit of 8 tasks: each one that starts says so; the shell counts them
  // with builtins alone (a fork would need a task of the limit).
  const std::string script =
      ": > /tmp/started; (for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
      "(echo $i >> /tmp/started; exec sleep 30) & done) 2>/dev/null; "
      "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
      "n=0; while read line; do n=$((n+1)); done < /tmp/started; echo $n";
  for (int64_t limit : {8, 0, -1}) {
    bundle(script,
           [&](nlohmann::json& config) { config["linux"]["resources"]["pids"]["limit"] = limit; });
    auto result = both("pids" + std::to_string(limit + 1));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    if (limit == 8) {
      EXPECT_LT(std::stoi(result.out), 8) << result.out;
    } else {
      EXPECT_EQ(result.out, "20\n") << "limit " << limit << " means none";
    }
  }
  bundle("echo ran", [](nlohmann::json& config) {
    config["linux"]["resources"]["cpu"] = {{"quota", -1}, {"period", 100000}};
  });
  EXPECT_EQ(both("quota").out, "ran\n");
}

// linux.resources.devices, enforced in the guest's cgroup by an eBPF program as runc does on the
// host: a device node (here /dev/kmsg's numbers, harmless to open for writing) may be made in a
// tmpfs (runc's defaults allow mknod of any device) but opened only as the rules allow; the last
// matching rule wins.
TEST_F(SpecFieldsTest, DeviceRulesAsWithRunc) {
  const std::string script =
      "rm -f /tmp/k; mknod /tmp/k c 1 11 && { (: > /tmp/k) 2>/dev/null && echo write-allowed || "
      "echo "
      "write-denied; }";
  const nlohmann::json deny_all = {{"allow", false}, {"access", "rwm"}};
  const nlohmann::json kmsg = {
      {"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 11}, {"access", "rwm"}};
  nlohmann::json kmsg_read = kmsg;
  kmsg_read["access"] = "r";
  const std::pair<nlohmann::json, std::string> cases[] = {
      {nlohmann::json::array({deny_all}), "write-denied\n"},
      {nlohmann::json::array({deny_all, kmsg}), "write-allowed\n"},
      {nlohmann::json::array({deny_all, kmsg_read}), "write-denied\n"},
      {nlohmann::json::array({kmsg, deny_all}), "write-denied\n"},
      {nlohmann::json::array(), "write-denied\n"},  // runc's defaults alone
      {nlohmann::json::array({{{"allow", true}, {"access", "rwm"}}}), "write-allowed\n"},
  };
  int n = 0;
  for (const auto& [rules, expected] : cases) {
    bundle(script, [&](nlohmann::json& config) {
      config["linux"]["resources"]["devices"] = rules;
      // A tmpfs of the container's own takes a device node (under vessel a 9p share does not:
      // QEMU cannot make device nodes on the host).
      config["mounts"].push_back({{"destination", "/tmp"},
                                  {"type", "tmpfs"},
                                  {"source", "tmpfs"},
                                  {"options", {"nosuid", "mode=1777"}}});
      const nlohmann::json caps = {"CAP_MKNOD", "CAP_DAC_OVERRIDE"};
      config["process"]["capabilities"] = {
          {"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    });
    EXPECT_EQ(both("devices" + std::to_string(n++)).out, expected) << rules.dump();
  }
}

TEST_F(SpecFieldsTest, AMissingWorkingDirectoryIsMadeAsByRunc) {
  bundle("pwd; stat -c '%a %u' .", [](nlohmann::json& config) {
    config["process"]["cwd"] = "/made/by/the/runtime";
    config["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  });
  EXPECT_EQ(both("cwd").out, "/made/by/the/runtime\n755 0\n");
}

// runtime-spec 1.1's domainname: Debian's runc 1.1.5 leaves it "(none)", so vessel is held to the
// spec here, not to runc.
TEST_F(SpecFieldsTest, DomainnameIsTheSpecs) {
  bundle("cat /proc/sys/kernel/domainname",
         [](nlohmann::json& config) { config["domainname"] = "example.test"; });
  auto result = vessel_cmd({"run", "domain"});
  EXPECT_EQ(result.out, "example.test\n") << result.err;
  expect_nothing_left("domain");
}

TEST_F(SpecFieldsTest, AHookGetsItsOwnEnvironmentOrTheRuntimesAsWithRunc) {
  const std::string out = m_dir.path() + "/hook-env";
  bundle("true", [&](nlohmann::json& config) {
    config["hooks"]["createRuntime"] = {
        {{"path", "/bin/sh"},
         {"args", {"sh", "-c", "echo ${FROM_THE_CALLER:-absent} ${ONLY:-absent} >> " + out}}},
        {{"path", "/bin/sh"},
         {"args", {"sh", "-c", "echo ${FROM_THE_CALLER:-absent} ${ONLY:-absent} >> " + out}},
         {"env", {"ONLY=given"}}}};
  });
  auto read_and_clear = [&] {
    std::string text;
    std::getline(std::ifstream(out), text, '\0');
    std::filesystem::remove(out);
    return text;
  };
  CommandOptions with_env{.env = {{"FROM_THE_CALLER", "1"}}, .cwd = m_bundle};
  ASSERT_EQ(
      run({"runc", "--root", m_dir.path() + "/runc", "run", "hooks-runc"}, with_env).exit_code, 0);
  std::string by_runc = read_and_clear();
  ASSERT_EQ(vessel_cmd({"run", "hooks"}, with_env).exit_code, 0);
  std::string by_vessel = read_and_clear();
  // Without env a hook gets the runtime's environment; with it, exactly that.
  EXPECT_EQ(by_runc, "1 absent\nabsent given\n");
  EXPECT_EQ(by_vessel, by_runc);
  expect_nothing_left("hooks");
}

TEST_F(SpecFieldsTest, SysctlsOutsideTheContainersNamespacesAreRefusedAsByRunc) {
  struct Case {
    std::string key;
    std::string without;  // the namespace dropped, or "" to keep them all
    std::string reason;
  };
  const Case cases[] = {
      {"kernel.shmmax", "ipc", "is not allowed in the host's ipc namespace"},
      {"fs.mqueue.msg_max", "ipc", "is not allowed in the host's ipc namespace"},
      {"net.ipv4.ip_forward", "network", "is not allowed in the host's network namespace"},
      {"kernel.hostname", "", "is not allowed as it conflicts with the spec's hostname field"},
      {"kernel.domainname", "uts", "is not in a separate kernel namespace"},
      {"vm.swappiness", "", "is not in a separate kernel namespace"},
  };
  int n = 0;
  for (const auto& one : cases) {
    bundle("true", [&](nlohmann::json& config) {
      config["linux"]["sysctl"] = {{one.key, "1"}};
      auto& namespaces = config["linux"]["namespaces"];
      for (size_t i = 0; i < namespaces.size(); ++i)
        if (namespaces[i]["type"] == one.without) namespaces.erase(i);
    });
    std::string id = "sysctl" + std::to_string(n++);
    auto by_runc = runc(id + "-runc");
    EXPECT_NE(by_runc.exit_code, 0) << one.key << ": runc took it";
    auto by_vessel = vessel_cmd({"run", id});
    EXPECT_EQ(by_vessel.exit_code, 1) << one.key;
    EXPECT_EQ(by_vessel.err, "vessel: linux.sysctl: \"" + one.key + "\" " + one.reason + "\n");
    expect_nothing_left(id);
  }
  // Within the container's own namespaces, as runc.
  bundle("cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname",
         [](nlohmann::json& config) {
           config["linux"]["sysctl"] = {{"kernel.shmmax", "123456"},
                                        {"net.ipv4.ip_forward", "1"},
                                        {"kernel.domainname", "by.sysctl"}};
         });
  EXPECT_EQ(both("sysctl-ok").out, "123456\n1\nby.sysctl\n");
}

}  // namespace vessel::test

// `vessel exec` with runc's flags, each checked inside the container against `runc exec` with the
// same flags on the same bundle: the process starts from the container's own (its environment,
// user and capabilities), and the flags change it as runc's do.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

namespace {

class ExecFlagsTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (::access("/usr/sbin/runc", X_OK) != 0 && ::access("/usr/bin/runc", X_OK) != 0)
      GTEST_SKIP() << "runc is not installed: run scripts/install-deps.sh";
    make_busybox_bundle(m_bundle, {"sleep", "1000"});
    auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
    config["process"]["noNewPrivileges"] = false;
    // runc spec's own set (runc 1.1.5 crashes on `exec --cap` when the spec names none).
    const nlohmann::json caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
    config["process"]["capabilities"] = {
        {"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    std::ofstream(m_bundle + "/config.json") << config.dump();
    auto by_runc =
        run({"runc", "--root", runc_root(), "create", "--bundle", m_bundle, "flags-runc"},
            {.cwd = m_bundle, .detach_output = true});
    ASSERT_EQ(by_runc.exit_code, 0) << by_runc.err;
    ASSERT_EQ(run({"runc", "--root", runc_root(), "start", "flags-runc"}).exit_code, 0);
    ASSERT_EQ(
        vessel_cmd({"create", "--bundle", m_bundle, "flags"}, {.detach_output = true}).exit_code,
        0);
    ASSERT_EQ(vessel_cmd({"start", "flags"}).exit_code, 0);
  }

  void TearDown() override {
    run({"runc", "--root", runc_root(), "delete", "--force", "flags-runc"});
    vessel_cmd({"delete", "--force", "flags"});
    expect_nothing_left("flags");
  }

  std::string runc_root() const { return m_dir.path() + "/runc"; }

  // `exec FLAGS ID COMMAND` under both; expects the same output and exit code, returns vessel's.
  CommandResult both(const std::vector<std::string>& flags,
                     const std::vector<std::string>& command) {
    std::vector<std::string> runc_args = {"runc", "--root", runc_root(), "exec"};
    std::vector<std::string> vessel_args = {"exec"};
    for (const auto& flag : flags) runc_args.push_back(flag), vessel_args.push_back(flag);
    runc_args.push_back("flags-runc");
    vessel_args.push_back("flags");
    for (const auto& word : command) runc_args.push_back(word), vessel_args.push_back(word);
    auto by_runc = run(runc_args);
    auto by_vessel = vessel_cmd(vessel_args);
    EXPECT_EQ(by_vessel.exit_code, by_runc.exit_code) << by_vessel.err << " / " << by_runc.err;
    EXPECT_EQ(by_vessel.out, by_runc.out);
    return by_vessel;
  }
};

}  // namespace

TEST_F(ExecFlagsTest, EnvUserGroupsCwdCapAndNoNewPrivsActAsRuncs) {
  // The container's own environment (TERM from the spec) with the added variables.
  EXPECT_EQ(
      both({"--env", "FOO=bar", "--env", "BAZ=qux"}, {"sh", "-c", "echo $FOO $BAZ $TERM"}).out,
      "bar qux xterm\n");
  EXPECT_EQ(both({"-e", "ONLY=one"}, {"sh", "-c", "echo $ONLY"}).out, "one\n");
  EXPECT_EQ(both({"--user", "1000:1001"}, {"sh", "-c", "id -u; id -g"}).out, "1000\n1001\n");
  EXPECT_EQ(both({"-u", "1000"}, {"sh", "-c", "id -u; id -g"}).out, "1000\n0\n");
  EXPECT_EQ(both({"-u", "1000:1000", "-g", "5", "-g", "6"}, {"id", "-G"}).out, "1000 5 6\n");
  EXPECT_EQ(both({"--cwd", "/tmp"}, {"pwd"}).out, "/tmp\n");
  auto without = both({}, {"grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/self/status"});
  auto with = both({"--cap", "CAP_NET_ADMIN", "--no-new-privs"},
                   {"grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/self/status"});
  EXPECT_NE(with.out, without.out);
  EXPECT_NE(with.out.find("NoNewPrivs:\t1"), std::string::npos) << with.out;
  EXPECT_NE(without.out.find("NoNewPrivs:\t0"), std::string::npos) << without.out;
}

TEST_F(ExecFlagsTest, DetachAndPidFileAsRuncs) {
  const std::string pid_file = m_dir.path() + "/exec.pid";
  auto detached = vessel_cmd({"exec", "--detach", "--pid-file", pid_file, "flags", "sh", "-c",
                              "sleep 2; echo done > /tmp/detached"});
  EXPECT_EQ(detached.exit_code, 0) << detached.err;
  std::string pid;
  std::getline(std::ifstream(pid_file), pid);
  EXPECT_FALSE(pid.empty());
  EXPECT_EQ(pid.find_first_not_of("0123456789"), std::string::npos) << pid;
  EXPECT_TRUE(std::filesystem::exists("/proc/" + pid)) << "the exec's process ended at once";
  for (int i = 0; i < 100 && vessel_cmd({"exec", "flags", "cat", "/tmp/detached"}).out != "done\n";
       ++i)
    ::usleep(100000);
  EXPECT_EQ(vessel_cmd({"exec", "flags", "cat", "/tmp/detached"}).out, "done\n");
}

TEST_F(ExecFlagsTest, WhatAVmCannotDoIsRefusedInOneSentence) {
  auto apparmor = vessel_cmd({"exec", "--apparmor", "unconfined", "flags", "true"});
  EXPECT_EQ(apparmor.exit_code, 1);
  EXPECT_EQ(apparmor.err,
            "vessel: vessel exec: --apparmor unconfined: the guest kernel has no AppArmor to apply "
            "it with (vessel features says so); leave it out\n");
  auto label =
      vessel_cmd({"exec", "--process-label", "system_u:system_r:container_t", "flags", "true"});
  EXPECT_EQ(label.exit_code, 1);
  EXPECT_NE(label.err.find("no SELinux"), std::string::npos) << label.err;
  ASSERT_EQ(vessel_cmd({"pause", "flags"}).exit_code, 0);
  for (const auto& flags :
       {std::vector<std::string>{}, std::vector<std::string>{"--ignore-paused"}}) {
    std::vector<std::string> args = {"exec"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {"flags", "true"});
    auto paused = vessel_cmd(args);
    EXPECT_EQ(paused.exit_code, 1);
    EXPECT_EQ(paused.err,
              "vessel: cannot exec in container \"flags\": it is paused, and its whole VM with it: "
              "resume it first\n");
  }
  ASSERT_EQ(vessel_cmd({"resume", "flags"}).exit_code, 0);
  EXPECT_EQ(vessel_cmd({"exec", "flags", "echo", "resumed"}).out, "resumed\n");
}

}  // namespace vessel::test

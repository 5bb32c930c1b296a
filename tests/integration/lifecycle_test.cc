// `delete --force` ends what it deletes, whatever state the shim is in: a container created and
// never started, and one whose shim is frozen in a cgroup (where SIGKILL waits for a thaw, as
// under cgroup v1's freezer). ps is the judge: no shim, no QEMU, no state directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

namespace {

// A cgroup of the test's own with `pid` in it, frozen; removed when it goes.
class FrozenCgroup {
 public:
  explicit FrozenCgroup(pid_t pid) {
    std::string name = "vessel-test-" + std::to_string(::getpid());
    if (std::filesystem::exists("/sys/fs/cgroup/freezer/freezer.state") ||
        std::filesystem::exists("/sys/fs/cgroup/freezer/tasks")) {
      m_dir = "/sys/fs/cgroup/freezer/" + name;
      m_state = m_dir + "/freezer.state";
      m_frozen = "FROZEN", m_thawed = "THAWED";
    } else if (std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")) {
      m_dir = "/sys/fs/cgroup/" + name;
      m_state = m_dir + "/cgroup.freeze";
      m_frozen = "1", m_thawed = "0";
    } else {
      return;
    }
    std::filesystem::create_directory(m_dir);
    std::ofstream(m_dir + "/cgroup.procs") << pid;
    std::ofstream(m_state) << m_frozen;
  }
  ~FrozenCgroup() {
    if (m_dir.empty()) return;
    std::ofstream(m_state) << m_thawed;
    for (int i = 0; i < 100 && ::rmdir(m_dir.c_str()) < 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  bool made() const { return !m_dir.empty(); }
  bool frozen() const {
    std::string state;
    std::getline(std::ifstream(m_state), state);
    return state == m_frozen;
  }

 private:
  std::string m_dir, m_state, m_frozen, m_thawed;
};

}  // namespace

TEST_F(RuntimeTest, DeleteForceEndsACreatedContainerAndAFrozenShim) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "never-started"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "never-started"}).exit_code, 0);
  expect_nothing_left("never-started");

  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "frozen"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "frozen"}).exit_code, 0);
  pid_t shim = read_json(vessel_cmd({"state", "frozen"}).out)["pid"];
  ASSERT_GT(shim, 0);
  {
    FrozenCgroup cgroup(shim);
    if (!cgroup.made()) {
      ASSERT_EQ(vessel_cmd({"delete", "--force", "frozen"}).exit_code, 0);
      GTEST_SKIP() << "this host has no cgroup freezer the test can use";
    }
    for (int i = 0; i < 100 && !cgroup.frozen(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(cgroup.frozen());
    auto deleted = vessel_cmd({"delete", "--force", "frozen"});
    EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
    expect_nothing_left("frozen");
  }
}

// `out=$(RUNTIME run -d ID)`: the caller reads end of file once the container closes its stdout
// and stderr (a daemon does), not when it exits; one that keeps them open is relayed to its end.
TEST_F(RuntimeTest, ADetachedContainerThatClosesItsStdioLetsTheCallerGoAsRuncDoes) {
  for (const std::string& runtime :
       {"runc --root " + m_dir.path() + "/runc", vessel() + " --root " + m_root}) {
    std::string id = runtime.starts_with("runc") ? "closes-runc" : "closes";
    make_busybox_bundle(m_bundle, {"sh", "-c", "echo before; exec >&- 2>&-; sleep 100"});
    auto closing = sh("out=$(timeout 60 " + runtime + " run -d " + id + "); echo \"$? $out\"",
                      {.cwd = m_bundle, .timeout_seconds = 90});
    EXPECT_EQ(closing.out, "0 before\n") << runtime << ": " << closing.err;
    EXPECT_EQ(sh(runtime + " delete --force " + id).exit_code, 0);
    std::filesystem::remove_all(m_bundle);
    make_busybox_bundle(m_bundle, {"sh", "-c", "echo kept; sleep 1; echo later"});
    auto keeping = sh("out=$(timeout 60 " + runtime + " run -d " + id + "-kept); echo \"$? $out\"",
                      {.cwd = m_bundle, .timeout_seconds = 90});
    EXPECT_EQ(keeping.out, "0 kept\nlater\n") << runtime << ": " << keeping.err;
    EXPECT_EQ(sh(runtime + " delete --force " + id + "-kept").exit_code, 0);
    std::filesystem::remove_all(m_bundle);
  }
  expect_nothing_left("closes");
  expect_nothing_left("closes-kept");
}

}  // namespace vessel::test

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

}  // namespace vessel::test

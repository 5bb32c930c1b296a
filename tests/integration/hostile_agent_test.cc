// The shim against a hostile guest: hostile-qemu (tests/support/hostile_qemu.cc) stands in for
// QEMU and breaks the agent protocol in one way per test. Whatever it does, the shim stays small,
// its logs stay under their caps, it never aborts, and KILL ends everything in bounded time.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "support/harness.h"

namespace vessel::test {

namespace {

constexpr long kMaxShimKib = 64 * 1024;

class HostileAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // like conmon: the shim becomes ours to reap
    m_root = m_dir.path() + "/state";
    m_bundle = m_dir.path() + "/bundle";
    make_busybox_bundle(m_bundle, {"sleep", "1000"});
  }

  void TearDown() override {
    for (const auto& id : m_ids) {
      run({vessel(), "--root", m_root, "delete", "--force", id});
      expect_nothing_left(id);
    }
  }

  std::string config_for(const std::string& mode) {
    std::string path = m_dir.path() + "/" + mode + ".toml";
    std::ofstream(path) << "[hypervisor.qemu]\npath = \"" << build_dir()
                        << "/tests/hostile-qemu\"\nkernel_params = \"vessel.hostile=" << mode
                        << "\"\naccel = \"tcg\"\n";
    return path;
  }

  CommandResult vessel_cmd(const std::string& mode, const std::vector<std::string>& args) {
    std::string command = vessel() + " --root " + m_root;
    for (const auto& arg : args) command += " " + arg;
    // The shim keeps create's stdout: the flood goes to /dev/null, not to a pipe we must drain.
    return sh(command + " </dev/null >/dev/null 2>" + m_dir.path() + "/err; status=$?; cat " +
                  m_dir.path() + "/err >&2; exit $status",
              {.env = {{"VESSEL_CONFIG", config_for(mode)}}, .timeout_seconds = 60});
  }

  // Creates and starts a container whose "guest" misbehaves from then on; returns the shim's pid.
  // A guest that breaks the protocol at once may be stopped before `start` gets its answer.
  enum class Start { MustAnswer, MayFail };
  pid_t start(const std::string& mode, const std::string& id, Start expect = Start::MustAnswer) {
    m_ids.push_back(id);
    auto created = vessel_cmd(mode, {"create", "--bundle", m_bundle, id});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    std::ifstream state_file(m_root + "/" + id + "/state.json");
    auto state = nlohmann::json::parse(state_file, nullptr, false);
    pid_t shim = state.is_object() ? state.value("pid", 0) : 0;
    auto started = vessel_cmd(mode, {"start", id});
    if (expect == Start::MustAnswer) {
      EXPECT_EQ(started.exit_code, 0) << started.err;
    }
    return shim;
  }

  static long peak_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.starts_with("VmHWM:")) return std::stol(line.substr(6));
    return -1;
  }

  // Waits for the shim (our child, by the subreaper) to exit; its wait status, or -1.
  static int reap(pid_t pid, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  size_t file_size(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  }

  std::string shim_log(const std::string& id) {
    std::ifstream log(m_root + "/" + id + "/shim.log");
    return std::string((std::istreambuf_iterator<char>(log)), {});
  }

  // KILL ends the container within a bounded time whatever the guest does.
  void expect_kill_ends_it(const std::string& mode, const std::string& id, pid_t shim) {
    auto started = std::chrono::steady_clock::now();
    auto killed = vessel_cmd(mode, {"kill", id, "KILL"});
    EXPECT_EQ(killed.exit_code, 0) << killed.err;
    int status = reap(shim, std::chrono::seconds(10));
    ASSERT_NE(status, -1) << "the shim outlived SIGKILL by 10 s";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) << status;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_EQ(processes_matching("hostile-qemu"), std::vector<std::string>{});
  }

  void expect_nothing_left(const std::string& id) {
    EXPECT_EQ(processes_matching("hostile-qemu"), std::vector<std::string>{});
    EXPECT_EQ(processes_matching(m_root + "/" + id), std::vector<std::string>{});
    EXPECT_FALSE(std::filesystem::exists(m_root + "/" + id));
  }

  TempDir m_dir;
  std::string m_root;
  std::string m_bundle;
  std::vector<std::string> m_ids;
};

}  // namespace

TEST_F(HostileAgentTest, OneByteDataFloodFromAGuestThatStopsReadingKeepsTheShimSmall) {
  pid_t shim = start("data-flood", "flood");
  std::this_thread::sleep_for(std::chrono::seconds(6));
  long peak = peak_kib(shim);
  EXPECT_GT(peak, 0) << "the shim is gone: " << shim_log("flood");
  EXPECT_LT(peak, kMaxShimKib) << "the shim grew while the guest was not reading";
  expect_kill_ends_it("data-flood", "flood", shim);
}

TEST_F(HostileAgentTest, EndlessConsoleOutputStaysUnderItsCapAndTheShimSmall) {
  pid_t shim = start("console-flood", "console");
  std::this_thread::sleep_for(std::chrono::seconds(6));
  std::string dir = m_root + "/console/";
  size_t kept = file_size(dir + "console.log") + file_size(dir + "console.log.1");
  EXPECT_GT(kept, 0u);
  EXPECT_LE(kept, 2u << 20);
  EXPECT_LE(file_size(dir + "shim.log") + file_size(dir + "shim.log.1"), 2u << 20);
  EXPECT_LT(peak_kib(shim), kMaxShimKib);
  expect_kill_ends_it("console-flood", "console", shim);
}

TEST_F(HostileAgentTest, MebibyteControlFramesWithoutEndKeepTheShimSmall) {
  pid_t shim = start("big-control", "control");
  std::this_thread::sleep_for(std::chrono::seconds(6));
  long peak = peak_kib(shim);
  EXPECT_GT(peak, 0) << shim_log("control");
  EXPECT_LT(peak, kMaxShimKib);
  expect_kill_ends_it("big-control", "control", shim);
}

TEST_F(HostileAgentTest, AnAgentThatIgnoresSignalsIsStillKilledAndExecsDoNotWaitForEver) {
  pid_t shim = start("ignore-signals", "deaf");
  auto exec = vessel_cmd("ignore-signals", {"exec", "deaf", "true"});
  EXPECT_EQ(exec.exit_code, 1);
  EXPECT_EQ(exec.err, "vessel: the agent did not start the process within 10 s\n");
  auto term = vessel_cmd("ignore-signals", {"kill", "deaf", "TERM"});
  EXPECT_EQ(term.exit_code, 0) << term.err;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(::waitpid(shim, nullptr, WNOHANG), 0) << "TERM is the guest's to obey";
  expect_kill_ends_it("ignore-signals", "deaf", shim);
}

TEST_F(HostileAgentTest, AnAgentThatNeverStartsTheContainerIsStopped) {
  m_ids.push_back("silent");
  ASSERT_EQ(vessel_cmd("silent-start", {"create", "--bundle", m_bundle, "silent"}).exit_code, 0);
  std::ifstream state_file(m_root + "/silent/state.json");
  pid_t shim = nlohmann::json::parse(state_file).value("pid", 0);
  auto started = vessel_cmd("silent-start", {"start", "silent"});
  EXPECT_EQ(started.exit_code, 1);
  EXPECT_EQ(started.err,
            "vessel: starting container \"silent\": the agent did not start the container within "
            "30 s\n");
  int status = reap(shim, std::chrono::seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) << status;
}

TEST_F(HostileAgentTest, ForcedDeleteOfAGuestThatIgnoresEverythingLeavesNothing) {
  start("ignore-signals", "forced");
  auto deleted = vessel_cmd("ignore-signals", {"delete", "--force", "forced"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  expect_nothing_left("forced");
}

// A guest that breaks the protocol gets its VM stopped: exit 137, one line in the log, no abort.
TEST_F(HostileAgentTest, ProtocolViolationsStopTheVmWithoutAnAbort) {
  for (auto [mode, logged] :
       {std::pair{"wrong-types", "agent channel: \"exit_code\" is not a number in [0, 255]"},
        std::pair{"short-credit", "agent channel: a frame of type 3 cannot be 2 bytes long"},
        std::pair{"credit-flood", "agent channel: credit beyond the stream window"}}) {
    std::string id = std::string("bad-") + mode;
    pid_t shim = start(mode, id, Start::MayFail);
    ASSERT_GT(shim, 0);
    int status = reap(shim, std::chrono::seconds(10));
    ASSERT_NE(status, -1) << mode;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) << mode << " " << status;
    EXPECT_NE(shim_log(id).find(logged), std::string::npos) << shim_log(id);
    EXPECT_EQ(processes_matching("hostile-qemu"), std::vector<std::string>{});
  }
}

// The sockets listening on `port` that process `pid` holds, seen in its network namespace.
static int listeners_held(pid_t pid, int port) {
  std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream table(proc + "/net/tcp");
  std::set<std::string> inodes;
  char local[16];
  std::snprintf(local, sizeof local, ":%04X", port);
  std::string line;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, address, remote, state, skip, inode;
    fields >> slot >> address >> remote >> state;
    for (int i = 0; i < 5; ++i) fields >> skip;  // tx:rx queues, timer, retransmits, uid, timeout
    fields >> inode;
    if (state == "0A" && address.ends_with(local)) inodes.insert("socket:[" + inode + "]");
  }
  int held = 0;
  for (const auto& fd : std::filesystem::directory_iterator(proc + "/fd")) {
    std::error_code error;
    held += inodes.count(std::filesystem::read_symlink(fd.path(), error).string());
  }
  return held;
}

TEST_F(HostileAgentTest, GuestPortsAreListenedOnOnlyForAPodThatAskedAndStrayFramesAreDropped) {
  // The guest of a plain container reports a port: nothing listens. The sandbox of a pod of
  // containerd's CRI asked for its guest's ports: its shim listens on the same report.
  pid_t plain = start("ports", "ports-plain");
  ASSERT_GT(plain, 0);
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["annotations"]["io.kubernetes.cri.container-type"] = "sandbox";
  std::ofstream(m_bundle + "/config.json") << config.dump();
  pid_t sandbox = start("ports", "ports-sandbox");
  ASSERT_GT(sandbox, 0);
  constexpr int kHostilePort = 47999;  // tests/support/hostile_qemu.cc
  for (int i = 0; i < 100 && listeners_held(sandbox, kHostilePort) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(listeners_held(sandbox, kHostilePort), 1);
  EXPECT_EQ(listeners_held(plain, kHostilePort), 0);
  for (const char* id : {"ports-plain", "ports-sandbox"}) {  // nothing the shim stopped for
    EXPECT_EQ(shim_log(id).find("agent channel"), std::string::npos) << shim_log(id);
    EXPECT_EQ(shim_log(id).find("\x1b"), std::string::npos) << shim_log(id);
  }
  EXPECT_EQ(vessel_cmd("ports", {"kill", "ports-plain", "KILL"}).exit_code, 0);
  EXPECT_NE(reap(plain, std::chrono::seconds(10)), -1);
  expect_kill_ends_it("ports", "ports-sandbox", sandbox);
}

TEST_F(HostileAgentTest, AHelloWithTheWrongTypesFailsCreateInOneSentence) {
  auto created = vessel_cmd("bad-hello", {"create", "--bundle", m_bundle, "hello"});
  EXPECT_EQ(created.exit_code, 1);
  EXPECT_EQ(created.err, "vessel: agent channel: \"version\" is not a string\n");
  expect_nothing_left("hello");
}

}  // namespace vessel::test

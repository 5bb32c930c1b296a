// The OCI lifecycle from the command line: create, start, state, kill, ps and delete, each
// verb's refusals in one line, signals to the container, and what `delete --force` leaves.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

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

// One connection to a shim's control socket: `line` sent as it is, the first answer line read
// back (within 10 s), or "(closed)" when the shim closes without one.
std::string ask_shim(const std::string& socket_path, const std::string& line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
    ::close(fd);
    return "(no shim)";
  }
  for (size_t sent = 0; sent < line.size();) {
    ssize_t n = ::write(fd, line.data() + sent, line.size() - sent);
    if (n <= 0) break;
    sent += size_t(n);
  }
  std::string answer;
  pollfd readable{fd, POLLIN, 0};
  char buffer[4096];
  while (answer.find('\n') == std::string::npos && ::poll(&readable, 1, 10000) == 1) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    answer.append(buffer, size_t(n));
  }
  ::close(fd);
  return answer.empty() ? "(closed)" : answer.substr(0, answer.find('\n'));
}

}  // namespace

// `delete --force` ends what it deletes, whatever state the shim is in: a container created and
// never started, and one whose shim is frozen in a cgroup (where SIGKILL waits for a thaw, as
// under cgroup v1's freezer). ps is the judge: no shim, no QEMU, no state directory.
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

TEST_F(RuntimeTest, CreateStartStateKillDeleteFollowTheOciLifecycle) {
  make_busybox_bundle(
      m_bundle,
      {"sh", "-c", "trap 'exit 9' USR1; echo started > /tmp/marker; while :; do sleep 0.1; done"});
  std::string pid_file = m_dir.path() + "/pid";
  auto created = vessel_cmd({"create", "--bundle", m_bundle, "--pid-file", pid_file, "life"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string pid_text;
  std::ifstream(pid_file) >> pid_text;
  pid_t shim = std::stoi(pid_text);

  auto state = read_json(vessel_cmd({"state", "life"}).out);
  EXPECT_EQ(state["status"], "created");
  EXPECT_EQ(state["pid"], shim);
  EXPECT_EQ(state["bundle"], m_bundle);
  EXPECT_EQ(state["id"], "life");
  EXPECT_FALSE(std::filesystem::exists(m_bundle + "/rootfs/tmp/marker"))
      << "create must not run the program";

  auto started = vessel_cmd({"start", "life"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_EQ(read_json(vessel_cmd({"state", "life"}).out)["status"], "running");
  auto again = vessel_cmd({"start", "life"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err, "vessel: cannot start container \"life\": it is running, not created\n");
  auto busy = vessel_cmd({"delete", "life"});
  EXPECT_EQ(
      busy.err,
      "vessel: cannot delete container \"life\": it is running: stop it first or use --force\n");

  for (int i = 0; i < 100 && !std::filesystem::exists(m_bundle + "/rootfs/tmp/marker"); ++i)
    ::usleep(100000);
  ASSERT_EQ(vessel_cmd({"kill", "life", "USR1"}).exit_code, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(shim, &status, 0), shim);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 9) << "the shim exits with the workload's status";

  auto stopped = read_json(vessel_cmd({"state", "life"}).out);
  EXPECT_EQ(stopped["status"], "stopped");
  auto kill_stopped = vessel_cmd({"kill", "life", "KILL"});
  EXPECT_EQ(kill_stopped.exit_code, 1);
  EXPECT_EQ(kill_stopped.err, "vessel: cannot signal \"life\": container not running\n");
  ASSERT_EQ(vessel_cmd({"delete", "life"}).exit_code, 0);
  auto gone = vessel_cmd({"state", "life"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.err, "vessel: container \"life\" does not exist\n");
  expect_nothing_left("life");
}

// The control socket is the user's, and anything the user runs can write to it: a line that is
// no request, or a request with a wrong field, is answered with the reason; the container runs on
// and the real verbs still work. (Requests in full: ControlMessageTest.)
TEST_F(RuntimeTest, TheShimAnswersAMalformedRequestWithItsReasonAndRunsOn) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "ctl"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "ctl"}).exit_code, 0);
  const std::string socket = m_root + "/ctl/shim.sock";
  auto refused = [](const std::string& why) {
    return nlohmann::json{{"ok", false}, {"error", why}}.dump();
  };
  EXPECT_EQ(ask_shim(socket, "not json\n"), refused("shim socket: not a JSON object"));
  EXPECT_EQ(ask_shim(socket, "{\"op\":\"launch\"}\n"), refused("unknown request"));
  EXPECT_EQ(ask_shim(socket, "{\"op\":\"kill\",\"signal\":99}\n"),
            refused("shim socket: \"signal\" is not a number in [1, 64]"));
  EXPECT_EQ(ask_shim(socket, "{\"op\":\"exec\",\"process\":{\"args\":[\"sh\"]}}\n"),
            refused("bad exec request"))
      << "an exec without its three descriptors";
  EXPECT_EQ(ask_shim(socket, "{\"op\":\"update\",\"resources\":\"all\"}\n"),
            refused("shim socket: \"resources\" is not an object"));
  EXPECT_EQ(ask_shim(socket, "{\"op\":\"kill\",\"signal\":9,\"member\":4294967295}\n"),
            refused("shim socket: \"member\" is not a number in [0, 536870911]"));
  EXPECT_EQ(ask_shim(socket, std::string(70000, 'x')), "(closed)") << "a line over 64 KiB";

  EXPECT_EQ(read_json(vessel_cmd({"state", "ctl"}).out)["status"], "running");
  auto exec = vessel_cmd({"exec", "ctl", "echo", "still here"});
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_EQ(exec.out, "still here\n");
  auto ps = vessel_cmd({"ps", "--format", "json", "ctl"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_EQ(read_json(ps.out), nlohmann::json::array({1})) << "sleep is the container's pid 1";
  EXPECT_EQ(vessel_cmd({"delete", "--force", "ctl"}).exit_code, 0);
  expect_nothing_left("ctl");
}

TEST_F(RuntimeTest, KillBeforeStartAndForcedDeleteLeaveNothing) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "early"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "early"}).exit_code, 0);
  expect_nothing_left("early");
  EXPECT_EQ(vessel_cmd({"delete", "--force", "never-existed"}).exit_code, 0)
      << "Podman deletes after failed creates";
  auto unknown = vessel_cmd({"delete", "never-existed"});
  EXPECT_EQ(unknown.err, "vessel: container \"never-existed\" does not exist\n");
}

TEST_F(RuntimeTest, ExistingId) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "twice"}).exit_code, 0);
  auto result = vessel_cmd({"create", "--bundle", m_bundle, "twice"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "vessel: container \"twice\" already exists: choose another id or delete it first "
            "(vessel delete twice)\n");
  EXPECT_EQ(read_json(vessel_cmd({"state", "twice"}).out)["status"], "created")
      << "the first container is untouched";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "twice"}).exit_code, 0);
  expect_nothing_left("twice");
}

TEST_F(RuntimeTest, SignalsToTheShimReachTheContainerAndQemuDiesWithTheShim) {
  make_busybox_bundle(
      m_bundle, {"sh", "-c", "trap 'echo got-usr1 > /tmp/usr1' USR1; while :; do sleep 0.1; done"});
  std::string pid_file = m_dir.path() + "/pid";
  ASSERT_EQ(
      vessel_cmd({"create", "--bundle", m_bundle, "--pid-file", pid_file, "signals"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "signals"}).exit_code, 0);
  std::string pid_text;
  std::ifstream(pid_file) >> pid_text;
  pid_t shim = std::stoi(pid_text);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let sh install its trap
  ::kill(shim, SIGUSR1);  // as a user's `kill` of the container's pid would
  for (int i = 0; i < 100 && !std::filesystem::exists(m_bundle + "/rootfs/tmp/usr1"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(std::filesystem::exists(m_bundle + "/rootfs/tmp/usr1"));

  ASSERT_FALSE(processes_matching("vessel-signals ").empty());
  ::kill(shim, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(shim, &status, 0), shim);
  bool qemu_gone = false;
  for (int i = 0; i < 50 && !qemu_gone; ++i) {
    qemu_gone = processes_matching("vessel-signals ").empty();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(qemu_gone) << "QEMU must die with its shim";
  EXPECT_EQ(read_json(vessel_cmd({"state", "signals"}).out)["status"], "stopped");
  ASSERT_EQ(vessel_cmd({"delete", "signals"}).exit_code, 0);
  expect_nothing_left("signals");
}

// The init is PID 1 of its namespace: a signal it has no handler for is dropped. Under emulation
// a shell reaches its `trap` much later than natively, so a TERM sent right after `start` (as
// `podman stop` right after `run`, or runtime-tools' killsig) would be lost; the agent holds it
// until the handler exists (at most 3 s after start). A program that never asks for the signal
// still does not get it, as under runc.
TEST_F(RuntimeTest, ASignalRightAfterStartReachesTheTrapTheProgramSetsUp) {
  make_busybox_bundle(m_bundle,
                      {"sh", "-c", "trap 'touch /trapped; exit 4' TERM; sleep 10 & wait $!"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "early-term"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "early-term"}).exit_code, 0);
  auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(vessel_cmd({"kill", "early-term", "TERM"}).exit_code, 0);
  while (read_json(vessel_cmd({"state", "early-term"}).out)["status"] != "stopped" &&
         std::chrono::steady_clock::now() - sent < std::chrono::seconds(8))
    ::usleep(100000);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(5));
  EXPECT_TRUE(std::filesystem::exists(m_bundle + "/rootfs/trapped"));
  ASSERT_EQ(vessel_cmd({"delete", "--force", "early-term"}).exit_code, 0);

  const std::string sleeper = m_dir.path() + "/sleeper";
  make_busybox_bundle(sleeper, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", sleeper, "no-handler"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "no-handler"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"kill", "no-handler", "TERM"}).exit_code, 0);
  ::sleep(2);
  EXPECT_EQ(read_json(vessel_cmd({"state", "no-handler"}).out)["status"], "running")
      << "PID 1 without a handler ignores TERM, as under runc";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "no-handler"}).exit_code, 0);
  expect_nothing_left("no-handler");
}

// `vessel ps` lists the processes in the container's VM, numbered as its pid namespace sees them.
TEST_F(RuntimeTest, PsListsTheContainersProcessesInTheGuest) {
  make_busybox_bundle(m_bundle,
                      {"sh", "-c", "sleep 1001 & echo ready > /tmp/ready; exec sleep 1002"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "listed"}).exit_code, 0);
  auto not_running = vessel_cmd({"ps", "listed"});
  EXPECT_EQ(not_running.err,
            "vessel: cannot list the processes of container \"listed\": it is created\n");
  ASSERT_EQ(vessel_cmd({"start", "listed"}).exit_code, 0);
  for (int i = 0; i < 100 && !std::filesystem::exists(m_bundle + "/rootfs/tmp/ready"); ++i)
    ::usleep(100000);
  ::usleep(200000);
  auto table = vessel_cmd({"ps", "listed"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out,
            "UID      PID      PPID     CMD\n"
            "0        1        0        sleep 1002\n"
            "0        2        1        sleep 1001\n");
  auto json = vessel_cmd({"ps", "--format", "json", "listed"});
  EXPECT_EQ(json.out, "[1,2]\n");
  auto options = vessel_cmd({"ps", "listed", "-ef"});
  EXPECT_EQ(options.exit_code, 1);
  EXPECT_EQ(options.err,
            "vessel: ps options are not supported: the container's processes run in its VM, where "
            "the host's ps cannot see them; use `podman exec listed ps ...` instead\n");
  ASSERT_EQ(vessel_cmd({"delete", "--force", "listed"}).exit_code, 0);
  expect_nothing_left("listed");
}

}  // namespace vessel::test

// vessel under real Podman, as root: `podman run --runtime=<build>/vessel` with a locally built
// busybox image (tests/e2e/build-image.sh). Podman runs with scripts/podman-sandbox.conf, the
// settings this sandbox needs (see docs/testing.md); vessel itself depends on none of them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/harness.h"

namespace vessel::test {

namespace {

constexpr const char* kImage = "localhost/vessel-test";

class PodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "these tests drive Podman as root; the rootless ones are separate";
    if (::access("/usr/bin/podman", X_OK) != 0)
      GTEST_SKIP() << "podman is not installed: run scripts/install-deps.sh";
  }

  CommandOptions env(CommandOptions options = {}) {
    options.env["CONTAINERS_CONF"] = source_dir() + "/scripts/podman-sandbox.conf";
    return options;
  }

  CommandResult podman(std::vector<std::string> args, CommandOptions options = {}) {
    args.insert(args.begin(), "podman");
    return run(args, env(std::move(options)));
  }

  std::vector<std::string> podman_run(std::vector<std::string> tail) {
    std::vector<std::string> args = {"run", "--runtime=" + vessel()};
    args.insert(args.end(), tail.begin(), tail.end());
    return args;
  }

  void expect_nothing_left(const std::string& id) {
    EXPECT_EQ(processes_matching("vessel-" + id), std::vector<std::string>{})
        << "QEMU or shim left running";
    EXPECT_FALSE(std::filesystem::exists("/run/vessel/" + id)) << "state directory left behind";
  }

  std::string full_id(const std::string& output) { return output.substr(0, output.find('\n')); }

  // Polls `podman logs` until `text` appears (the container prints it once it is ready).
  bool wait_for_log(const std::string& id, const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (podman({"logs", id}).out.find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
};

}  // namespace

TEST_F(PodmanTest, RunPrintsTheGuestKernelAndRelaysStdoutStderrAndExitCode) {
  auto result =
      podman(podman_run({"--rm", kImage, "sh", "-c", "uname -r; echo out; echo err >&2; exit 3"}));
  EXPECT_EQ(result.exit_code, 3) << result.err;
  std::string release = result.out.substr(0, result.out.find('\n'));
  EXPECT_TRUE(release.ends_with("-vessel")) << result.out;
  EXPECT_NE(release, host_kernel_release());
  EXPECT_EQ(result.out, release + "\nout\n");
  EXPECT_EQ(result.err, "err\n");
}

TEST_F(PodmanTest, RunsInsideAVirtualMachineWithTheAgentAsPid1) {
  // The guest's PID 1 is vessel-agent, outside the container's pid namespace; inside, the
  // container has its own PID 1 and sees the guest's CPU and memory, not the host's.
  auto result = podman(
      podman_run({"--rm", kImage, "sh", "-c",
                  "echo $$; grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo"}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.out.starts_with("1\n1\n")) << result.out;  // one vCPU by default
  long kib = std::stol(result.out.substr(result.out.find(':') + 1));
  EXPECT_LT(kib, 300 * 1024) << "256 MiB guest";
}

TEST_F(PodmanTest, StopSendsTermThenKillAfterTheTimeout) {
  auto started = podman(podman_run({"-d", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  auto stopped = podman({"stop", "-t", "2", id});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_GE(stopped.seconds, 2.0)
      << "sleep as PID 1 ignores SIGTERM: Podman must wait for the timeout";
  EXPECT_NE(stopped.err.find("resorting to SIGKILL"), std::string::npos) << stopped.err;
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.ExitCode}}", id}).out, "137\n");
  EXPECT_EQ(podman({"rm", id}).exit_code, 0);
  expect_nothing_left(id);
}

TEST_F(PodmanTest, TermAndUsr1ReachTheContainersTraps) {
  auto started = podman(
      podman_run({"-d", kImage, "sh", "-c",
                  "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 7' TERM; echo ready; "
                  "while :; do sleep 0.1; done"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  ASSERT_TRUE(wait_for_log(id, "ready"));
  EXPECT_EQ(podman({"kill", "-s", "USR1", id}).exit_code, 0);
  EXPECT_TRUE(wait_for_log(id, "got-usr1"));
  auto stopped = podman({"stop", id});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_LT(stopped.seconds, 5.0) << "the TERM trap exits at once";
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.ExitCode}}", id}).out, "7\n");
  EXPECT_NE(podman({"logs", id}).out.find("got-term"), std::string::npos);
  EXPECT_EQ(podman({"rm", id}).exit_code, 0);
  expect_nothing_left(id);
}

TEST_F(PodmanTest, ForcedRemovalOfARunningContainerLeavesNothing) {
  auto started = podman(podman_run({"-d", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

TEST_F(PodmanTest, TenMebibytesThroughStdinComeBackIntact) {
  std::string input(10 << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (auto& byte : input) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    byte = static_cast<char>(x);
  }
  auto result = podman(podman_run({"--rm", "-i", kImage, "cat"}), {.input = input});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.size(), input.size());
  EXPECT_TRUE(result.out == input) << "the bytes differ";
}

TEST_F(PodmanTest, HundredMebibytesOfStdoutArriveByteExact) {
  // /data/block.bin is 4 MiB of random bytes baked into the image; 25 copies make 100 MiB.
  std::ifstream file(build_dir() + "/tests/image/data/block.bin", std::ios::binary);
  std::string block((std::istreambuf_iterator<char>(file)), {});
  ASSERT_EQ(block.size(), 4u << 20);
  auto result = podman(
      podman_run({"--rm", kImage, "sh", "-c", "for i in $(seq 25); do cat /data/block.bin; done"}));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  ASSERT_EQ(result.out.size(), 100u << 20);
  for (size_t i = 0; i < 25; ++i)
    ASSERT_TRUE(result.out.compare(i * block.size(), block.size(), block) == 0) << "copy " << i;
}

TEST_F(PodmanTest, TerminalIsAPtyInTheGuest) {
  // conmon receives the master of a host pty through the console socket; the shim relays its
  // slave to a pty the agent made inside the guest, whose line discipline turns \n into \r\n.
  auto result = podman(podman_run({"--rm", "-t", kImage, "sh", "-c", "tty; echo hi; exit 4"}));
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_EQ(result.out, "/dev/pts/0\r\nhi\r\n");
}

// Root's default network: a netavark bridge. The guest's eth0 takes the address Podman gave.
TEST_F(PodmanTest, BridgeNetworkWorksBothWaysBetweenContainersAndWithPublishedPorts) {
  auto server = podman(
      podman_run({"-d", "-p", "18081:80", kImage, "sh", "-c",
                  "mkdir -p /www; echo from-c1 > /www/index.html; exec httpd -f -p 80 -h /www"}));
  ASSERT_EQ(server.exit_code, 0) << server.err;
  std::string id = full_id(server.out);
  std::string ip = podman({"inspect", "-f", "{{.NetworkSettings.IPAddress}}", id}).out;
  ip = ip.substr(0, ip.find('\n'));
  ASSERT_FALSE(ip.empty());
  auto fetch = [](const std::string& url) {
    CommandResult page;
    for (int i = 0; i < 50 && page.out.empty(); ++i) {
      page = sh("curl -s -m 2 " + url);
      if (page.out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return page.out;
  };
  EXPECT_EQ(fetch("http://" + ip + "/index.html"), "from-c1\n") << "host to container by IP";
  EXPECT_EQ(fetch("http://127.0.0.1:18081/index.html"), "from-c1\n") << "published port";
  auto neighbour =
      podman(podman_run({"--rm", kImage, "wget", "-qO-", "http://" + ip + "/index.html"}));
  EXPECT_EQ(neighbour.out, "from-c1\n") << "container to container: " << neighbour.err;

  TempDir www;
  sh("echo from-the-host > " + www.path() + "/index.html");
  ASSERT_EQ(sh("busybox httpd -p 0.0.0.0:18082 -h " + www.path()).exit_code, 0);
  auto to_host = podman(podman_run(
      {"--rm", kImage, "wget", "-qO-", "http://host.containers.internal:18082/index.html"}));
  sh("pkill -f 'httpd -p 0.0.0.0:18082'");
  EXPECT_EQ(to_host.out, "from-the-host\n") << "container to host: " << to_host.err;
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

TEST_F(PodmanTest, NetworkNoneHasOnlyLoopbackAndHostNetworkIsRefused) {
  auto none = podman(podman_run({"--rm", "--network=none", kImage, "ls", "/sys/class/net"}));
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "lo\n");
  auto host = podman(podman_run({"--rm", "--network=host", kImage, "true"}));
  EXPECT_EQ(host.exit_code, 126);
  EXPECT_NE(
      host.err.find("a container in a VM cannot share the host's network: drop --network=host"),
      std::string::npos)
      << host.err;
}

TEST_F(PodmanTest, VolumesAreSharedWithTheGuest) {
  TempDir volume;
  sh("echo from-the-host > " + volume.path() + "/in");
  auto result = podman(podman_run({"--rm", "-v", volume.path() + ":/data", kImage, "sh", "-c",
                                   "cat /data/in; echo from-the-guest > /data/out"}));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "from-the-host\n");
  EXPECT_EQ(sh("cat " + volume.path() + "/out").out, "from-the-guest\n");
  auto readonly = podman(podman_run(
      {"--rm", "-v", volume.path() + ":/data:ro", kImage, "sh", "-c", "echo x > /data/out"}));
  EXPECT_NE(readonly.exit_code, 0) << "a read-only volume must stay read-only";
}

TEST_F(PodmanTest, ExecRelaysStdioExitCodesAndTerminals) {
  auto started = podman(podman_run({"-d", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  auto plain = podman({"exec", id, "sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(plain.exit_code, 7);
  EXPECT_EQ(plain.out, "out\n");
  EXPECT_EQ(plain.err, "err\n");
  auto input = podman({"exec", "-i", id, "wc", "-c"}, {.input = std::string(1 << 20, 'z')});
  EXPECT_EQ(input.out, "1048576\n");
  auto tty = podman({"exec", "-t", id, "tty"});
  EXPECT_EQ(tty.exit_code, 0) << tty.err;
  EXPECT_TRUE(tty.out.starts_with("/dev/pts/")) << tty.out;
  auto missing = podman({"exec", id, "no-such-program"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

TEST_F(PodmanTest, PauseFreezesTheWholeVmAndUnpauseResumesIt) {
  auto started =
      podman(podman_run({"-d", kImage, "sh", "-c", "while :; do echo tick; sleep 0.1; done"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  ASSERT_TRUE(wait_for_log(id, "tick"));
  ASSERT_EQ(podman({"pause", id}).exit_code, 0);
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.Status}}", id}).out, "paused\n");
  auto ticks = [&] {
    std::string log = podman({"logs", id}).out;
    return std::count(log.begin(), log.end(), '\n');
  };
  auto frozen = ticks();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(ticks(), frozen) << "nothing runs in a paused VM";
  ASSERT_EQ(podman({"unpause", id}).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_GT(ticks(), frozen);
  ASSERT_EQ(podman({"pause", id}).exit_code, 0);
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0)
      << "a paused container can be removed";
  expect_nothing_left(id);
}

// The same container under runc and under vessel sees the same privileges.
TEST_F(PodmanTest, CapabilitiesAndProtectedPathsMatchRunc) {
  const std::string script =
      "grep -E '^Cap|NoNewPrivs' /proc/self/status; echo 1 > /proc/sys/kernel/domainname || echo "
      "ro-sys; "
      "head -c 1 /proc/kcore | wc -c";
  for (const auto& flags : std::vector<std::vector<std::string>>{
           {},
           {"--cap-drop=all", "--cap-add=NET_ADMIN", "--security-opt=no-new-privileges"},
           {"--user=1000"}}) {
    std::vector<std::string> args = {"run", "--rm"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {kImage, "sh", "-c", script});
    auto with = [&](const std::string& runtime) {
      auto full = args;
      full.insert(full.begin() + 1, "--runtime=" + runtime);
      return podman(full);
    };
    auto runc = with("runc");
    auto ours = with(vessel());
    EXPECT_EQ(ours.out, runc.out) << "flags: " << (flags.empty() ? "(none)" : flags[0]) << "\n"
                                  << ours.err;
  }
}

TEST_F(PodmanTest, ProgramNotFoundExits127LikeRunc) {
  auto result = podman(podman_run({"--rm", kImage, "no-such-program"}));
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_NE(result.err.find("executable file not found in $PATH"), std::string::npos) << result.err;
}

}  // namespace vessel::test

// Podman's lifecycle verbs under vessel: stop, kill and their signals, forced removal (of a hostile
// guest too), pause and unpause, and the everyday verbs as with runc.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/harness.h"
#include "support/podman_fixture.h"

namespace vessel::test {

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

// A guest that ignores signals, or floods the shim, still goes when Podman says so.
TEST_F(PodmanTest, StopAndForcedRemovalEndAHostileGuest) {
  TempDir dir;
  for (const char* mode : {"ignore-signals", "data-flood"}) {
    std::string config = dir.path() + "/" + mode + ".toml";
    std::ofstream(config) << "[hypervisor.qemu]\npath = \"" << build_dir()
                          << "/tests/hostile-qemu\"\nkernel_params = \"vessel.hostile=" << mode
                          << "\"\n"
                          << kNoTemplates;
    std::string runtime = dir.path() + "/vessel-" + mode;
    std::ofstream(runtime) << "#!/bin/sh\nexport VESSEL_CONFIG=" << config << "\nexec " << vessel()
                           << " \"$@\"\n";
    std::filesystem::permissions(runtime, std::filesystem::perms::owner_all);
    auto started = podman({"run", "-d", "--runtime=" + runtime, kImage, "sleep", "1000"});
    ASSERT_EQ(started.exit_code, 0) << started.err;
    std::string id = full_id(started.out);
    auto before = std::chrono::steady_clock::now();
    auto ended = std::string(mode) == "ignore-signals" ? podman({"stop", "-t", "1", id})
                                                       : podman({"rm", "-f", "-t", "0", id});
    EXPECT_EQ(ended.exit_code, 0) << mode << ": " << ended.err;
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(15)) << mode;
    EXPECT_EQ(processes_matching("hostile-qemu"), std::vector<std::string>{}) << mode;
    // conmon runs Podman's cleanup once the container is gone, then exits too.
    for (int i = 0; i < 100 && !processes_matching("conmon --api-version 1 -c " + id).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(processes_matching("conmon --api-version 1 -c " + id), std::vector<std::string>{});
    podman({"rm", "-f", id});
    expect_nothing_left(id);
  }
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

// `podman pause` of a VM busy with a spinning process: QEMU itself stops using the CPU.
TEST_F(PodmanTest, PauseUnderLoadStopsTheVmsCpu) {
  auto started = podman(podman_run({"-d", kImage, "sh", "-c", "echo ready; while :; do :; done"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  ASSERT_TRUE(wait_for_log(id, "ready"));
  std::string qemu = sh("pgrep -f 'qemu-system.*vessel-" + id + "'").out;
  qemu = qemu.substr(0, qemu.find('\n'));
  ASSERT_FALSE(qemu.empty());
  auto cpu_ticks = [&] {
    std::string stat = sh("cut -d' ' -f14,15 /proc/" + qemu + "/stat").out;
    return std::stol(stat) + std::stol(stat.substr(stat.find(' ') + 1));
  };
  ASSERT_EQ(podman({"pause", id}).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  long before = cpu_ticks();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  long paused = cpu_ticks() - before;
  ASSERT_EQ(podman({"unpause", id}).exit_code, 0);
  before = cpu_ticks();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  long running = cpu_ticks() - before;
  EXPECT_LE(paused, 5) << "clock ticks QEMU used in 2 s while paused";
  EXPECT_GE(running, 50) << "clock ticks QEMU used in 2 s spinning";
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

// Podman's everyday verbs, each checked by its effect, under runc and vessel in the same test:
// --init, wait, logs -f, restart, kill --signal, healthcheck run, export and commit of a running
// container.
TEST_F(PodmanTest, EverydayVerbsBehaveAsWithRunc) {
  const std::string state_before =
      sh("ls /run/vessel | grep -v -e kvm-probe -e tsc-khz -e console.log -e templates").out;
  auto observe = [&](const std::string& runtime) {
    std::string seen;
    auto run_d = [&](std::vector<std::string> tail) {
      std::vector<std::string> args = {"run", "-d", "--runtime=" + runtime};
      args.insert(args.end(), tail.begin(), tail.end());
      auto started = podman(args);
      EXPECT_EQ(started.exit_code, 0) << runtime << ": " << started.err;
      return full_id(started.out);
    };
    auto note = [&](const std::string& what, const CommandResult& result) {
      seen += what + ": " + std::to_string(result.exit_code) + " " + result.out;
      if (result.out.empty() || result.out.back() != '\n') seen += "\n";
    };
    note("init", podman({"run", "--rm", "--init", "--runtime=" + runtime, kImage, "sh", "-c",
                         "tr '\\0' ' ' < /proc/1/cmdline"}));
    // --timeout: conmon kills the container's process group, which is the shim's own.
    std::string timed = "vessel-timeout-" + std::to_string(seen.size());
    note("timeout", podman({"run", "--name", timed, "--timeout", "2", "--runtime=" + runtime,
                            kImage, "sleep", "60"}));
    note("after timeout", podman({"inspect", "-f", "{{.State.Status}}", timed}));
    podman({"rm", "-f", timed});
    std::string id = run_d({kImage, "sh", "-c", "sleep 1; exit 7"});
    note("wait", podman({"wait", id}));
    podman({"rm", id});

    id = run_d({kImage, "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done"});
    note("logs -f", podman({"logs", "-f", id}));
    podman({"rm", id});

    id = run_d({kImage, "sh", "-c", "echo started; exec sleep 1000"});
    EXPECT_TRUE(wait_for_log(id, "started"));
    EXPECT_EQ(podman({"restart", "-t", "0", id}).exit_code, 0) << runtime;
    for (int i = 0; i < 100 && podman({"logs", id}).out != "started\nstarted\n"; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    note("logs after restart", podman({"logs", id}));
    note("status", podman({"inspect", "-f", "{{.State.Status}}", id}));
    podman({"rm", "-f", "-t", "0", id});

    id = run_d(
        {kImage, "sh", "-c", "trap 'echo got-hup' HUP; echo ready; while :; do sleep 0.1; done"});
    EXPECT_TRUE(wait_for_log(id, "ready"));
    EXPECT_EQ(podman({"kill", "--signal", "HUP", id}).exit_code, 0) << runtime;
    EXPECT_TRUE(wait_for_log(id, "got-hup")) << runtime;
    podman({"kill", id});
    note("wait after kill", podman({"wait", id}));
    podman({"rm", id});

    id = run_d({"--health-cmd", "cat /tmp/healthy", "--health-interval", "disable", kImage, "sh",
                "-c", "echo yes > /tmp/healthy; echo ready; exec sleep 1000"});
    EXPECT_TRUE(wait_for_log(id, "ready"));
    note("healthcheck", podman({"healthcheck", "run", id}));
    podman({"exec", id, "rm", "/tmp/healthy"});
    note("healthcheck after rm", podman({"healthcheck", "run", id}));
    podman({"rm", "-f", "-t", "0", id});

    id = run_d({kImage, "sh", "-c", "echo inside > /made; echo ready; exec sleep 1000"});
    EXPECT_TRUE(wait_for_log(id, "ready"));
    note("export", sh("podman export " + id + " | tar -tf - | grep -x made", env()));
    std::string image = "localhost/vessel-committed-" + std::to_string(seen.size());
    EXPECT_EQ(podman({"commit", "-q", id, image}).exit_code, 0);
    note("status after commit", podman({"inspect", "-f", "{{.State.Status}}", id}));
    note("committed", podman({"run", "--rm", "--runtime=" + runtime, image, "cat", "/made"}));
    podman({"rm", "-f", "-t", "0", id});
    podman({"rmi", image});
    return seen;
  };
  std::string runc = observe("runc");
  std::string ours = observe(vessel());
  EXPECT_EQ(ours, runc);
  EXPECT_NE(runc.find("init: 0 /run/podman-init -- sh -c"), std::string::npos) << runc;
  EXPECT_NE(runc.find("wait: 0 7\n"), std::string::npos) << runc;
  EXPECT_NE(runc.find("logs -f: 0 line1\nline2\nline3\n"), std::string::npos) << runc;
  EXPECT_NE(runc.find("healthcheck after rm: 1 unhealthy"), std::string::npos) << runc;
  EXPECT_NE(runc.find("committed: 0 inside"), std::string::npos) << runc;
  EXPECT_NE(runc.find("timeout: 255 \nafter timeout: 0 exited\n"), std::string::npos) << runc;
  EXPECT_EQ(sh("ls /run/vessel | grep -v -e kvm-probe -e tsc-khz -e console.log -e templates").out,
            state_before)
      << "no state left";
}

}  // namespace vessel::test

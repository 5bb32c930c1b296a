// Resources under Podman: --memory, --cpus and their kin size the VM and are enforced in the
// guest; the VM's host cgroup carries the CPU limits and podman stats reads its real cost.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/podman_fixture.h"

namespace vessel::test {

// --memory and --cpus size the VM (default_memory + the limit, ceil(cpus) vCPUs) and the guest's
// cgroup enforces them: over the limit the container is OOM-killed in the guest, exits 137, and
// Podman says OOMKilled; podman update changes the limit the container sees.
TEST_F(PodmanTest, ResourcesSizeTheVmAndAreEnforcedInTheGuest) {
  auto sized =
      podman(podman_run({"--rm", "--memory", "512m", "--cpus", "2", kImage, "sh", "-c",
                         "grep MemTotal /proc/meminfo; nproc; cat /sys/fs/cgroup/memory.max "
                         "/sys/fs/cgroup/cpu.max"}));
  ASSERT_EQ(sized.exit_code, 0) << sized.err;
  long kib = std::stol(sized.out.substr(sized.out.find(':') + 1));
  EXPECT_GE(kib, 512 * 1024) << sized.out;
  EXPECT_NE(sized.out.find("\n2\n536870912\n200000 100000\n"), std::string::npos) << sized.out;
  auto limits = podman(
      podman_run({"--rm", "--memory", "64m", "--memory-swap", "96m", "--pids-limit", "50",
                  "--cpuset-cpus", "0", kImage, "sh", "-c",
                  "cd /sys/fs/cgroup; cat memory.max memory.swap.max pids.max cpuset.cpus"}));
  EXPECT_EQ(limits.out, "67108864\n33554432\n50\n0\n") << limits.err;
  // Kata's annotations (or vessel's) size one container's VM, within the configured ceilings.
  auto annotated = podman(
      podman_run({"--rm", "--annotation", "io.katacontainers.config.hypervisor.default_memory=640",
                  "--annotation", "io.vessel.default_vcpus=2", kImage, "sh", "-c",
                  "grep MemTotal /proc/meminfo; nproc"}));
  ASSERT_EQ(annotated.exit_code, 0) << annotated.err;
  long annotated_kib = std::stol(annotated.out.substr(annotated.out.find(':') + 1));
  EXPECT_GE(annotated_kib, 560 * 1024) << annotated.out;
  EXPECT_LE(annotated_kib, 640 * 1024) << annotated.out;
  EXPECT_TRUE(annotated.out.ends_with("\n2\n")) << annotated.out;
  auto too_big = podman(
      podman_run({"--rm", "--annotation", "io.vessel.default_memory=999999", kImage, "true"}));
  EXPECT_NE(too_big.exit_code, 0);
  EXPECT_NE(too_big.err.find("annotation io.vessel.default_memory = \"999999\": must be a whole "
                             "number of MiB from 64 to 16384 (default_maxmemory in the "
                             "configuration)"),
            std::string::npos)
      << too_big.err;

  std::string name = "vessel-oom-test";
  podman({"rm", "-f", name});
  auto oom = podman(podman_run(
      {"--name", name, "--memory", "64m", kImage, "sh", "-c", "x=a; while :; do x=$x$x; done"}));
  EXPECT_EQ(oom.exit_code, 137) << oom.err;
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", name}).out,
            "true 137\n");
  podman({"rm", "-f", name});

  auto started = podman(podman_run({"-d", "--memory", "256m", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  EXPECT_EQ(podman({"exec", id, "cat", "/sys/fs/cgroup/memory.max"}).out, "268435456\n");
  auto updated = podman({"update", "--memory", "300m", id});
  EXPECT_EQ(updated.exit_code, 0) << updated.err;
  EXPECT_EQ(podman({"exec", id, "cat", "/sys/fs/cgroup/memory.max"}).out, "314572800\n");
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

// The shim and QEMU live in the cgroup Podman names (linux.cgroupsPath), as runc's processes
// do: podman stats reads the VM's real cost, and the cgroup goes with the container.
TEST_F(PodmanTest, PodmanStatsReadsTheVmsRealCost) {
  auto started = podman(podman_run({"-d", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  std::string shim = podman({"inspect", "-f", "{{.State.Pid}}", id}).out;
  shim = shim.substr(0, shim.find('\n'));
  auto qemu = processes_matching("-name vessel-" + id);
  ASSERT_EQ(qemu.size(), 1u);
  for (const std::string& pid : {shim, qemu[0].substr(0, qemu[0].find(':'))})
    EXPECT_NE(sh("cat /proc/" + pid + "/cgroup").out.find("/libpod_parent/libpod-" + id),
              std::string::npos)
        << pid;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto stats = podman({"stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}}", id});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  double cpu = std::stod(stats.out);
  EXPECT_GE(cpu, 0.0) << stats.out;
  EXPECT_LE(cpu, 100.0 * std::thread::hardware_concurrency()) << stats.out;
  EXPECT_NE(stats.out.find("MB /"), std::string::npos) << "QEMU's memory, in MB" << stats.out;
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  EXPECT_EQ(sh("find /sys/fs/cgroup -maxdepth 3 -name libpod-" + id).out, "");
  expect_nothing_left(id);
}

// The CPU limits go on the VM's host cgroup too, as runc puts them on its processes' (memory
// stays with the guest: a host limit of the container's size would kill the VM), and follow
// `podman update`.
TEST_F(PodmanTest, HostCgroupCarriesTheCpuLimitsAndFollowsUpdates) {
  if (!std::filesystem::exists("/sys/fs/cgroup/cpu/cpu.shares"))
    GTEST_SKIP() << "this test reads cgroup v1's cpu controller, which this host does not mount";
  auto started = podman(podman_run({"-d", "--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus",
                                    "0", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  auto read = [&](const std::string& controller, const std::string& file) {
    std::string dir = sh("find /sys/fs/cgroup/" + controller +
                         "/ -maxdepth 3 -type d -name libpod-" + id + " | head -1")
                          .out;
    dir = dir.substr(0, dir.find('\n'));
    std::string value = sh("cat " + dir + "/" + file).out;
    return value.substr(0, value.find('\n'));
  };
  EXPECT_EQ(read("cpu", "cpu.cfs_quota_us"), "150000");
  EXPECT_EQ(read("cpu", "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(read("cpu", "cpu.shares"), "512");
  EXPECT_EQ(read("cpuset", "cpuset.cpus"), "0");
  auto updated = podman({"update", "--cpus", "0.5", id});
  EXPECT_EQ(updated.exit_code, 0) << updated.err;
  EXPECT_EQ(read("cpu", "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(podman({"exec", id, "cat", "/sys/fs/cgroup/cpu.max"}).out, "50000 100000\n");
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

}  // namespace vessel::test

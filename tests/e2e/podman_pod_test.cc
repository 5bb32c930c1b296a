// Podman pods under vessel (docs/pods.md): one VM whose members share its network, ipc and
// hostname, and a pod whose infra is another runtime's refused.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/harness.h"
#include "support/podman_fixture.h"

namespace vessel::test {

// A pod is one VM (docs/pods.md): the infra container boots it, members are created inside it.
// B reaches A's server on 127.0.0.1 and both see the pod's hostname, as in a runc pod beside it;
// each has its own root filesystem and pid namespace; one QEMU, one guest boot; stopping one
// member leaves the other running; `pod rm -f` leaves nothing behind.
TEST_F(PodmanTest, APodIsOneVmWhoseMembersShareItsNetworkAndHostname) {
  auto members_agree = [&](const std::string& runtime, const std::string& pod) {
    podman({"pod", "rm", "-f", "-t", "0", pod});
    // The pod's own limits (its cgroup): the pod's VM is sized for them.
    EXPECT_EQ(podman({"--runtime=" + runtime, "pod", "create", "--name", pod, "--memory", "300m",
                      "--cpus", "2"})
                  .exit_code,
              0);
    auto a =
        podman({"--runtime=" + runtime, "run", "-d", "--pod", pod, "--name", pod + "-a", kImage,
                "sh", "-c", "echo served-by-a > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"});
    EXPECT_EQ(a.exit_code, 0) << a.err;
    auto b = podman({"--runtime=" + runtime, "run", "-d", "--pod", pod, "--name", pod + "-b",
                     kImage, "sleep", "1000"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    std::string page;
    for (int i = 0; i < 100 && page.empty(); ++i) {
      page = podman({"exec", pod + "-b", "wget", "-qO-", "http://127.0.0.1:8080/index.html"}).out;
      if (page.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_EQ(page, "served-by-a\n") << runtime;
    // The pod's IPC namespace and its /dev/shm.
    EXPECT_EQ(podman({"exec", pod + "-a", "sh", "-c", "echo shm-of-a > /dev/shm/shared"}).exit_code,
              0);
    EXPECT_EQ(podman({"exec", pod + "-b", "cat", "/dev/shm/shared"}).out, "shm-of-a\n") << runtime;
    EXPECT_EQ(podman({"exec", pod + "-a", "hostname"}).out, pod + "\n");
    EXPECT_EQ(podman({"exec", pod + "-b", "hostname"}).out, pod + "\n");
    // Own root filesystems, own pid namespaces.
    EXPECT_EQ(podman({"exec", pod + "-b", "test", "-e", "/tmp/index.html"}).exit_code, 1);
    EXPECT_EQ(podman({"exec", pod + "-b", "cat", "/proc/1/cmdline"}).out, std::string("sleep\0"
                                                                                      "1000\0",
                                                                                      11));
  };
  members_agree("runc", "vessel-runc-pod");
  podman({"pod", "rm", "-f", "-t", "0", "vessel-runc-pod"});

  const std::string pod = "vessel-pod";
  members_agree(vessel(), pod);
  std::string infra = podman({"pod", "inspect", pod, "-f", "{{.InfraContainerID}}"}).out;
  infra = infra.substr(0, infra.find('\n'));
  // One VM: QEMU is the infra container's, and both members run on that one guest boot.
  wait_for_template_builders();
  EXPECT_EQ(processes_matching("qemu-system").size(), 1u);
  EXPECT_EQ(processes_matching("-name vessel-" + infra).size(), 1u) << "QEMU is the infra's";
  auto boot_a = podman({"exec", pod + "-a", "cat", "/proc/sys/kernel/random/boot_id"});
  auto boot_b = podman({"exec", pod + "-b", "cat", "/proc/sys/kernel/random/boot_id"});
  EXPECT_EQ(boot_a.out, boot_b.out);
  EXPECT_EQ(boot_a.out.size(), 37u);
  EXPECT_EQ(podman({"exec", pod + "-b", "nproc"}).out, "2\n");
  auto memory = podman(
      {"exec", pod + "-b", "sh", "-c", "grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2"});
  EXPECT_GE(std::atol(memory.out.c_str()), 300L * 1024) << "kB: at least the pod's 300 MiB";
  auto kernel = podman({"exec", pod + "-b", "uname", "-r"});
  EXPECT_TRUE(kernel.out.ends_with("-vessel\n")) << kernel.out;
  auto exit_code = podman({"exec", pod + "-a", "sh", "-c", "exit 4"});
  EXPECT_EQ(exit_code.exit_code, 4);
  // A member paused alone is frozen in the guest (its server answers nobody); the VM and the
  // other member run on; resumed, it answers again.
  EXPECT_EQ(podman({"pause", pod + "-a"}).exit_code, 0);
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.Status}}", pod + "-a"}).out, "paused\n");
  auto frozen = podman(
      {"exec", pod + "-b", "wget", "-q", "-T", "2", "-O-", "http://127.0.0.1:8080/index.html"});
  EXPECT_NE(frozen.exit_code, 0) << frozen.out;
  EXPECT_EQ(podman({"unpause", pod + "-a"}).exit_code, 0);
  EXPECT_EQ(podman({"exec", pod + "-b", "wget", "-qO-", "http://127.0.0.1:8080/index.html"}).out,
            "served-by-a\n");

  // A member stops and goes; the VM and the other member run on.
  EXPECT_EQ(podman({"stop", "-t", "1", pod + "-a"}).exit_code, 0);
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.Running}}", pod + "-a"}).out, "false\n");
  EXPECT_EQ(podman({"rm", pod + "-a"}).exit_code, 0);
  EXPECT_EQ(podman({"exec", pod + "-b", "echo", "still-here"}).out, "still-here\n");
  wait_for_template_builders();
  EXPECT_EQ(processes_matching("qemu-system").size(), 1u);
  // A member over its memory limit is OOM-killed in the guest, alone.
  auto oom =
      podman({"--runtime=" + vessel(), "run", "--pod", pod, "--name", pod + "-oom", "--memory",
              "32m", kImage, "sh", "-c", "x=aaaaaaaa; while :; do x=$x$x; done"});
  EXPECT_EQ(oom.exit_code, 137) << oom.err;
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.OOMKilled}}", pod + "-oom"}).out, "true\n");
  EXPECT_EQ(podman({"exec", pod + "-b", "echo", "survived"}).out, "survived\n");
  podman({"rm", "-f", pod + "-oom"});

  EXPECT_EQ(podman({"pod", "rm", "-f", "-t", "0", pod}).exit_code, 0);
  wait_for_template_builders();
  EXPECT_EQ(processes_matching("qemu-system"), std::vector<std::string>{});
  EXPECT_EQ(processes_matching("vessel-shim"), std::vector<std::string>{});
  for (const auto& entry : std::filesystem::directory_iterator("/run/vessel"))
    EXPECT_TRUE(!entry.is_directory() || entry.path().filename() == "templates")
        << entry.path() << " left behind";
  EXPECT_EQ(sh("ip -o link show | grep -c vessel").out, "0\n");
}

// A pod whose infra container runs under another runtime cannot take a vessel member: one
// sentence says why and what to do, and nothing is left.
TEST_F(PodmanTest, AMemberOfAPodWhoseInfraIsNotVesselIsToldHowToFixIt) {
  podman({"pod", "rm", "-f", "-t", "0", "vessel-mixed-pod"});
  ASSERT_EQ(podman({"--runtime=runc", "pod", "create", "--name", "vessel-mixed-pod"}).exit_code, 0);
  auto refused = podman(podman_run({"--rm", "--pod", "vessel-mixed-pod", kImage, "true"}));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("is not a vessel container, and a pod is one VM: run the pod's infra "
                             "container with vessel too (podman --runtime=vessel pod create"),
            std::string::npos)
      << refused.err;
  wait_for_template_builders();
  EXPECT_EQ(processes_matching("qemu-system"), std::vector<std::string>{});
  podman({"pod", "rm", "-f", "-t", "0", "vessel-mixed-pod"});
}

}  // namespace vessel::test

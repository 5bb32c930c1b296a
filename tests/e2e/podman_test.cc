// vessel under real Podman, as root: `podman run --runtime=<build>/vessel` with a locally built
// busybox image (tests/e2e/build-image.sh). Podman runs with scripts/podman-sandbox.conf, the
// settings this sandbox needs (see docs/testing.md); vessel itself depends on none of them.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
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
  // A path that exists but cannot run is 126, and a process without HOME gets "/" (as runc
  // gives both); an exec of it is 126 too.
  for (const std::string& runtime : {std::string("runc"), vessel()}) {
    EXPECT_EQ(podman({"run", "--rm", "--runtime=" + runtime, kImage, "/etc"}).exit_code, 126)
        << runtime;
    EXPECT_EQ(podman({"run", "--rm", "--runtime=" + runtime, "--user", "100", kImage, "sh", "-c",
                      "echo $HOME"})
                  .out,
              "/\n")
        << runtime;
    auto started = podman({"run", "-d", "--runtime=" + runtime, kImage, "sleep", "1000"});
    std::string id = full_id(started.out);
    EXPECT_EQ(podman({"exec", id, "/etc"}).exit_code, 126) << runtime;
    podman({"rm", "-f", "-t", "0", id});
  }
}

// Podman enters the mount namespace of the container's pid: the shim's, which shows the
// container's files (the same ones the guest sees over 9p) and nothing of the host.
TEST_F(PodmanTest, PodmanCpMovesFilesInTheContainerAndNeverOnTheHost) {
  TempDir volume;
  auto started = podman(podman_run({"-d", "-v", volume.path() + ":/vol", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  TempDir files;
  std::string probe = "vessel-cp-probe-" + id.substr(0, 12);
  sh("echo from-the-host > " + files.path() + "/in");
  ASSERT_FALSE(std::filesystem::exists("/tmp/" + probe));

  auto in = podman({"cp", files.path() + "/in", id + ":/tmp/" + probe});
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_FALSE(std::filesystem::exists("/tmp/" + probe)) << "podman cp wrote on the host";
  EXPECT_EQ(podman({"exec", id, "cat", "/tmp/" + probe}).out, "from-the-host\n")
      << "the guest does not see what podman cp wrote";

  auto to_volume = podman({"cp", files.path() + "/in", id + ":/vol/copied"});
  EXPECT_EQ(to_volume.exit_code, 0) << to_volume.err;
  EXPECT_EQ(sh("cat " + volume.path() + "/copied").out, "from-the-host\n");

  ASSERT_EQ(podman({"exec", id, "sh", "-c", "echo from-the-guest > /tmp/made-inside"}).exit_code,
            0);
  auto out = podman({"cp", id + ":/tmp/made-inside", files.path() + "/out"});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(sh("cat " + files.path() + "/out").out, "from-the-guest\n");
  auto passwd = podman({"cp", id + ":/etc/passwd", files.path() + "/passwd"});
  EXPECT_EQ(passwd.exit_code, 0) << passwd.err;
  EXPECT_EQ(sh("cat " + files.path() + "/passwd").out,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
      << "podman cp read the host's /etc/passwd";

  // podman top reads /proc where the shim's pid leads: no host process may show up there.
  auto top = podman({"top", id});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(std::count(top.out.begin(), top.out.end(), '\n'), 1) << top.out;
  // With ps(1) options Podman runs ps in the container: the guest's processes.
  auto guest_top = podman({"top", id, "-ef"});
  EXPECT_EQ(guest_top.exit_code, 0) << guest_top.err;
  EXPECT_NE(guest_top.out.find("    1 root     sleep 1000"), std::string::npos) << guest_top.out;

  // A stopped container: Podman copies from its storage, and the file is still there.
  ASSERT_EQ(podman({"stop", "-t", "0", id}).exit_code, 0);
  auto stopped = podman({"cp", id + ":/tmp/" + probe, files.path() + "/after"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(sh("cat " + files.path() + "/after").out, "from-the-host\n");
  EXPECT_EQ(podman({"rm", "-f", id}).exit_code, 0);
  expect_nothing_left(id);
}

// Exactly runc's five sets for each way a user changes them.
TEST_F(PodmanTest, CapabilitySetsAreExactlyRuncs) {
  for (const auto& flags :
       std::vector<std::vector<std::string>>{{"--cap-drop=all"},
                                             {"--cap-drop=CHOWN"},
                                             {"--cap-add=SYS_ADMIN"},
                                             {"--privileged"},
                                             {"--cap-drop=all", "--user=1000"}}) {
    auto with = [&](const std::string& runtime) {
      std::vector<std::string> args = {"run", "--rm", "--runtime=" + runtime};
      args.insert(args.end(), flags.begin(), flags.end());
      args.insert(args.end(), {kImage, "grep", "^Cap", "/proc/self/status"});
      return podman(args);
    };
    auto runc = with("runc");
    auto ours = with(vessel());
    ASSERT_EQ(runc.exit_code, 0) << runc.err;
    EXPECT_EQ(std::count(ours.out.begin(), ours.out.end(), '\n'), 5) << ours.out << ours.err;
    EXPECT_EQ(ours.out, runc.out) << "flags: " << flags[0];
  }
}

// QEMU as Firecracker's jailer would leave it: not host root, nothing of the host's mounts. The
// shim, which reads what the guest sends, keeps no capability once the VM runs.
TEST_F(PodmanTest, QemuAndTheShimRunWithoutHostPrivileges) {
  auto started = podman(podman_run({"-d", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  auto qemu = processes_matching("-name vessel-" + id);
  ASSERT_EQ(qemu.size(), 1u);
  std::string pid = qemu[0].substr(0, qemu[0].find(':'));
  auto ns = [](const std::string& who, const std::string& kind) {
    return std::filesystem::read_symlink("/proc/" + who + "/ns/" + kind).string();
  };
  auto shim = podman({"inspect", "-f", "{{.State.Pid}}", id}).out;
  shim = shim.substr(0, shim.find('\n'));
  for (const char* kind : {"user", "mnt", "pid", "ipc", "uts", "net"})
    EXPECT_NE(ns(pid, kind), ns("self", kind)) << kind << " namespace is the host's";
  EXPECT_NE(ns(pid, "mnt"), ns(shim, "mnt"));
  auto status = sh("grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/" + pid + "/status").out;
  // CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, held in its own user namespace only.
  EXPECT_EQ(status,
            "CapEff:\t000000000000001f\nCapBnd:\t000000000000001f\nNoNewPrivs:\t1\nSeccomp:\t2\n");
  EXPECT_EQ(sh("wc -c < /proc/" + pid + "/environ").out, "0\n") << "QEMU inherited an environment";
  EXPECT_EQ(sh("grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/" + shim + "/status").out,
            "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n");
  // Its root holds what it runs from and serves, no host /etc, /home or /run.
  auto root = sh("ls /proc/" + pid + "/root/").out;
  EXPECT_EQ(root, "bin\ndev\netc\nlib\nlib32\nlib64\nproc\nsbin\nusr\nvessel\n");
  EXPECT_EQ(sh("ls /proc/" + pid + "/root/etc/").out, "ld.so.cache\n");
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

// What a user does with a volume, under runc and under vessel, each in a fresh host directory:
// `chown`, `chmod`, a `--user 1000` writer, `mkdir -p`, `podman cp` into it. The host sees the
// same owners and modes, and so does the container. Then what runc lets a root container leave in
// a host directory and vessel refuses (EPERM): a setuid or setgid file, a device node; a bound
// file takes no setuid bit either, while the root filesystem does, as under runc.
TEST_F(PodmanTest, VolumesGetRuncsOwnersAndModesButNeverASetuidFileOrADevice) {
  TempDir source;
  std::ofstream(source.path() + "/copied") << "from the host\n";
  std::map<std::string, std::string> host, guest;
  for (const std::string& runtime : {std::string("runc"), vessel()}) {
    TempDir volume;
    TempDir bound;
    std::ofstream(bound.path() + "/file") << "bound\n";
    auto started =
        podman({"run", "-d", "--runtime=" + runtime, "--cap-add=MKNOD", "-v", volume.path() + ":/v",
                "-v", bound.path() + "/file:/bound", kImage, "sleep", "1000"});
    ASSERT_EQ(started.exit_code, 0) << started.err;
    std::string id = full_id(started.out);
    auto in = [&](std::vector<std::string> args, const std::string& user = "0:0") {
      args.insert(args.begin(), {"exec", "--user", user, id});
      auto result = podman(args);
      EXPECT_EQ(result.exit_code, 0) << runtime << ": " << result.err;
      return result.out;
    };
    in({"sh", "-c",
        "echo x > /v/g && chown 1234:1234 /v/g && chmod 640 /v/g && mkdir -p /v/a/b/c && "
        "chmod 750 /v/a/b && touch /v/a/b/c/f && chown -R 42:43 /v/a && mkdir /v/open && "
        "chmod 1777 /v/open && ln -s g /v/link"});
    in({"sh", "-c", "echo u > /v/open/u && mkdir -p /v/open/x/y"}, "1000:1000");
    EXPECT_EQ(podman({"cp", source.path() + "/copied", id + ":/v/copied"}).exit_code, 0);
    // A writable share is not cached in the guest (cache=mmap): each side reads what the other
    // wrote at once, a rewrite too.
    std::ofstream(volume.path() + "/from-host") << "host\n";
    EXPECT_EQ(in({"cat", "/v/from-host", "/v/copied"}), "host\nfrom the host\n");
    std::ofstream(volume.path() + "/from-host") << "rewritten on the host\n";
    EXPECT_EQ(in({"cat", "/v/from-host"}), "rewritten on the host\n");
    in({"sh", "-c", "echo guest > /v/from-host"});
    EXPECT_EQ(sh("cat " + volume.path() + "/from-host").out, "guest\n");
    guest[runtime] = in({"sh", "-c", "cd /v && find . | sort | xargs stat -c '%n %u %g %a %F'"});
    host[runtime] = sh("cd " + volume.path() + " && find . -printf '%p %U %G %m %y\n' | sort").out;

    auto privileged = podman(
        {"exec", id, "sh", "-c",
         "cp /bin/busybox /v/suid; chmod u+s /v/suid; echo $?; chmod g+s /v/g; echo $?; "
         "mknod /v/null c 1 3; echo $?; chmod u+s /bound; echo $?; cp /bin/busybox /bin/suid && "
         "chmod 4755 /bin/suid && stat -c %A /bin/suid"});
    if (runtime == "runc") {
      EXPECT_EQ(privileged.out, "0\n0\n0\n0\n-rwsr-xr-x\n") << privileged.err;
    } else {
      EXPECT_EQ(privileged.out, "1\n1\n1\n1\n-rwsr-xr-x\n") << privileged.err;
      EXPECT_NE(privileged.err.find("/v/suid: Operation not permitted"), std::string::npos)
          << privileged.err;
      // Nothing of the kind on the host.
      EXPECT_EQ(sh("find " + volume.path() + " " + bound.path() +
                   " \\( -perm /6000 -o -type b -o -type c \\) -print")
                    .out,
                "");
    }
    EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
    // A container with a user namespace cannot give a file an id outside its mapping.
    auto outside = podman({"run", "--rm", "--runtime=" + runtime, "--uidmap", "0:100000:65536",
                           "--gidmap", "0:100000:65536", "-v", volume.path() + ":/v", kImage, "sh",
                           "-c", "touch /v/open/mapped && chown 70000 /v/open/mapped; echo $?"});
    EXPECT_EQ(outside.out, "1\n") << runtime << ": " << outside.err;
    EXPECT_EQ(sh("stat -c '%u' " + volume.path() + "/open/mapped").out, "100000\n") << runtime;
  }
  EXPECT_EQ(host["runc"], host[vessel()]);
  EXPECT_EQ(guest["runc"], guest[vessel()]);
  EXPECT_NE(host["runc"].find("./g 1234 1234 640 f"), std::string::npos) << host["runc"];
  EXPECT_NE(host["runc"].find("./open/u 1000 1000 644 f"), std::string::npos) << host["runc"];
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

// -v FILE:FILE shares the file itself: writes go both ways, and QEMU serves the bound files
// alone, never the directory they sit in.
TEST_F(PodmanTest, ABindMountedFileIsSharedBothWaysWithoutItsSiblings) {
  TempDir dir;
  sh("echo initial > " + dir.path() + "/shared; echo secret > " + dir.path() + "/sibling");
  auto started = podman(
      podman_run({"-d", "-v", dir.path() + "/shared:/etc/shared.conf", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  auto wrote =
      podman({"exec", id, "sh", "-c", "cat /etc/shared.conf; echo from-guest >> /etc/shared.conf"});
  EXPECT_EQ(wrote.out, "initial\n") << wrote.err;
  EXPECT_EQ(sh("cat " + dir.path() + "/shared").out, "initial\nfrom-guest\n");
  sh("echo from-host >> " + dir.path() + "/shared");
  EXPECT_EQ(podman({"exec", id, "cat", "/etc/shared.conf"}).out,
            "initial\nfrom-guest\nfrom-host\n");
  auto qemu = processes_matching("-name vessel-" + id);
  ASSERT_EQ(qemu.size(), 1u);
  // Podman's own files (.containerenv, hostname, hosts, resolv.conf) and ours: numbered, alone.
  std::string served =
      sh("ls /proc/" + qemu[0].substr(0, qemu[0].find(':')) + "/root/vessel/files").out;
  EXPECT_EQ(served.find("sibling"), std::string::npos) << served;
  EXPECT_EQ(served, "0\n1\n2\n3\n4\n") << served;
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

// A socket cannot cross into a VM: a clear refusal, never a silent drop.
TEST_F(PodmanTest, ABindMountedSocketIsRefusedInOneSentence) {
  TempDir dir;
  std::string socket = dir.path() + "/app.sock";
  sh("python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind(\"" + socket + "\")'");
  auto result = podman(podman_run({"--rm", "-v", socket + ":/app.sock", kImage, "true"}));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("bind mount source " + socket +
                            " is a socket, which a container in a VM cannot reach: share a "
                            "directory or a file instead, or use runc for this container"),
            std::string::npos)
      << result.err;
}

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

// --read-only (with Podman's tmpfs on /tmp, /var/tmp and /run, mount points the image lacks),
// --tmpfs and a named volume: the same as under runc.
TEST_F(PodmanTest, ReadOnlyRootTmpfsAndNamedVolumesBehaveAsWithRunc) {
  podman({"volume", "rm", "-f", "vessel-test-volume"});
  ASSERT_EQ(podman({"volume", "create", "vessel-test-volume"}).exit_code, 0);
  const std::string script =
      "touch /x 2>/dev/null || echo root-ro; touch /tmp/a /var/tmp/b /run/c && echo tmpfs-rw; "
      "grep -c ' /scratch tmpfs' /proc/mounts; echo kept >> /data/f; cat /data/f";
  for (const std::string& runtime : {std::string("runc"), vessel()}) {
    auto result =
        podman({"run", "--rm", "--runtime=" + runtime, "--read-only", "--tmpfs", "/scratch", "-v",
                "vessel-test-volume:/data", kImage, "sh", "-c", script});
    EXPECT_EQ(result.exit_code, 0) << runtime << ": " << result.err;
    EXPECT_EQ(result.out,
              std::string("root-ro\ntmpfs-rw\n1\nkept\n") + (runtime == "runc" ? "" : "kept\n"))
        << runtime;
  }
  podman({"volume", "rm", "-f", "vessel-test-volume"});
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

TEST_F(PodmanTest, TerminalsTakeKeystrokesCtrlCResizesDetachAttachAndExitCodes) {
  std::string name = "vessel-tty-test";
  podman({"rm", "-f", "-t", "0", name});
  std::string podman_cmd =
      "CONTAINERS_CONF=" + source_dir() + "/scripts/podman-sandbox.conf podman";
  Terminal run_tty("vessel-run", podman_cmd + " run --name " + name + " -it --runtime=" + vessel() +
                                     " " + kImage + " sh");
  ASSERT_TRUE(run_tty.shows("/ #")) << run_tty.screen();
  run_tty.type("echo hello-$((6*7))");
  run_tty.press("Enter");
  EXPECT_TRUE(run_tty.shows("hello-42")) << run_tty.screen();

  run_tty.type("sleep 100");
  run_tty.press("Enter");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  run_tty.press("C-c");  // reaches the foreground program, not the container
  run_tty.type("echo after-$?");
  run_tty.press("Enter");
  EXPECT_TRUE(run_tty.shows("after-130")) << run_tty.screen();

  run_tty.resize(100, 25);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  run_tty.type("stty size");
  run_tty.press("Enter");
  EXPECT_TRUE(run_tty.shows("25 100")) << run_tty.screen();
  // A running program learns of a resize by SIGWINCH, as full-screen programs do.
  run_tty.type("sh -c 'trap \"stty size | sed s/^/winch-/\" WINCH; while :; do sleep 0.1; done'");
  run_tty.press("Enter");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  run_tty.resize(90, 20);
  EXPECT_TRUE(run_tty.shows("winch-20 90")) << run_tty.screen();
  run_tty.press("C-c");

  {
    Terminal exec_tty("vessel-exec", podman_cmd + " exec -it " + name + " sh");
    ASSERT_TRUE(exec_tty.shows("/ #")) << exec_tty.screen();
    exec_tty.type("echo exec-$((1+1))");
    exec_tty.press("Enter");
    EXPECT_TRUE(exec_tty.shows("exec-2")) << exec_tty.screen();
    exec_tty.press("C-d");  // end of input: the shell exits 0
    EXPECT_TRUE(exec_tty.shows("exited-0")) << exec_tty.screen();
  }

  // Podman's detach keys, one after the other as a person types them; then attach again.
  run_tty.press("C-p");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  run_tty.press("C-q");
  EXPECT_TRUE(run_tty.shows("exited-0")) << run_tty.screen();
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.Status}}", name}).out, "running\n");
  Terminal attach_tty("vessel-attach", podman_cmd + " attach " + name);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  attach_tty.type("echo again-$((2+3))");
  attach_tty.press("Enter");
  EXPECT_TRUE(attach_tty.shows("again-5")) << attach_tty.screen();
  attach_tty.type("exit 3");
  attach_tty.press("Enter");
  EXPECT_TRUE(attach_tty.shows("exited-")) << attach_tty.screen();
  for (int i = 0; i < 50 && podman({"inspect", "-f", "{{.State.Status}}", name}).out != "exited\n";
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(podman({"inspect", "-f", "{{.State.ExitCode}}", name}).out, "3\n");
  podman({"rm", "-f", name});
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

// Flags a Podman user passes, each read back from inside the container, under runc and vessel
// in the same test: what runc shows is what vessel must show.
TEST_F(PodmanTest, RunFlagsSeenInsideMatchRunc) {
  TempDir dir;
  std::string host_dir = dir.path() + "/shared";
  std::filesystem::create_directories(host_dir);
  std::ofstream(host_dir + "/original") << "from the host\n";
  // Each runtime gets its own named volume (VOLUME below), used twice.
  for (const char* name : {"vessel-flags-runc", "vessel-flags-vessel"})
    podman({"volume", "rm", "-f", name});
  struct Case {
    std::vector<std::string> flags;
    std::string script;
  };
  const std::vector<Case> cases = {
      {{"--oom-score-adj", "300"}, "cat /proc/self/oom_score_adj"},
      {{"--shm-size", "32m"}, "df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2"},
      {{"--user", "1000:1000", "--group-add", "1234"}, "id -u; id -G"},
      {{"--read-only", "--read-only-tmpfs"},
       "touch /tmp/a /var/tmp/b /run/c && echo tmpfs-writable; touch /etc/x || echo root-ro"},
      {{"--read-only", "--read-only-tmpfs=false"}, "touch /tmp/a || echo tmp-ro"},
      {{"-v", host_dir + ":/data:O"},
       "cat /data/original; echo changed > /data/original; echo new > /data/new; ls /data"},
      {{"--mount", "type=tmpfs,destination=/scratch,tmpfs-size=1m"},
       "df -k /scratch | tail -1 | tr -s ' ' | cut -d' ' -f2"},
      {{"--mount", "type=bind,src=" + host_dir + ",dst=/b,ro"},
       "cat /b/original; touch /b/x || echo bind-ro"},
      {{"--mount", "type=volume,src=VOLUME,dst=/v"},
       "cat /v/note 2>/dev/null || echo first; echo kept > /v/note"},
      {{"--mount", "type=volume,src=VOLUME,dst=/v"}, "cat /v/note"},
      {{"--device", "/dev/fuse"}, "stat -c '%F %t:%T' /dev/fuse"},
      {{"--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"},
       "id -u; cat /proc/self/uid_map | tr -s ' '; touch /tmp/mapped && stat -c %u /tmp/mapped"},
      {{"--hostname", "flags-host", "--env", "GREETING=hi", "--workdir", "/tmp"},
       "hostname; echo $GREETING; pwd"},
      {{"--sysctl", "net.ipv4.ip_unprivileged_port_start=80"},
       "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"},
      {{"--security-opt", "no-new-privileges"}, "grep NoNewPrivs /proc/self/status"},
  };
  for (const auto& test : cases) {
    auto with = [&](const std::string& runtime) {
      std::vector<std::string> args = {"run", "--rm", "--runtime=" + runtime};
      for (std::string flag : test.flags) {
        if (auto at = flag.find("VOLUME"); at != std::string::npos)
          flag.replace(at, 6, runtime == "runc" ? "vessel-flags-runc" : "vessel-flags-vessel");
        args.push_back(flag);
      }
      args.insert(args.end(), {kImage, "sh", "-c", test.script});
      return podman(args);
    };
    auto runc = with("runc");
    auto ours = with(vessel());
    std::string flags;
    for (const auto& flag : test.flags) flags += flag + " ";
    EXPECT_EQ(runc.exit_code, 0) << flags << runc.err;
    EXPECT_EQ(ours.exit_code, runc.exit_code) << flags << ours.err;
    EXPECT_EQ(ours.out, runc.out) << flags << ours.err;
  }
  std::string original;
  std::getline(std::ifstream(host_dir + "/original"), original);
  EXPECT_EQ(original, "from the host") << "an overlay volume's writes stay in the overlay";
  EXPECT_FALSE(std::filesystem::exists(host_dir + "/new"));
  for (const char* name : {"vessel-flags-runc", "vessel-flags-vessel"})
    podman({"volume", "rm", "-f", name});
}

// A tmpfs lives only in the guest: `podman cp` into it says so (read-only file system) rather
// than landing unseen underneath it on the host.
TEST_F(PodmanTest, PodmanCpIntoAGuestOnlyTmpfsFailsVisibly) {
  auto started = podman(podman_run({"-d", "--tmpfs", "/scratch", kImage, "sleep", "1000"}));
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = full_id(started.out);
  TempDir dir;
  std::ofstream(dir.path() + "/note") << "hello\n";
  auto copied = podman({"cp", dir.path() + "/note", id + ":/scratch/note"});
  EXPECT_NE(copied.exit_code, 0);
  EXPECT_NE(copied.err.find("read-only file system"), std::string::npos) << copied.err;
  EXPECT_EQ(podman({"exec", id, "ls", "/scratch"}).out, "");
  EXPECT_EQ(podman({"cp", dir.path() + "/note", id + ":/tmp/note"}).exit_code, 0)
      << "elsewhere podman cp still works";
  EXPECT_EQ(podman({"exec", id, "cat", "/tmp/note"}).out, "hello\n");
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

// A guest that dies while starting is reported as what it is, with the console's last lines, on
// the stderr of `podman run`: a kernel panic (a real one: no root file system to boot), and the
// agent, the guest's init, exiting early (a stand-in QEMU prints the kernel's panic for it). With
// enable_debug the console log is kept and its path said.
TEST_F(PodmanTest, AGuestThatDiesWhileStartingIsNamedWithTheConsoleTail) {
  TempDir dir;
  const std::string state_before =
      sh("ls /run/vessel | grep -v -e kvm-probe -e tsc-khz -e console.log -e templates").out;
  auto runtime_with = [&](const std::string& name, const std::string& toml) {
    std::ofstream(dir.path() + "/" + name + ".toml") << "[hypervisor.qemu]\n"
                                                     << toml << kNoTemplates;
    std::string runtime = dir.path() + "/vessel-" + name;
    std::ofstream(runtime) << "#!/bin/sh\nexport VESSEL_CONFIG=" << dir.path() << "/" << name
                           << ".toml\nexec " << vessel() << " \"$@\"\n";
    std::filesystem::permissions(runtime, std::filesystem::perms::owner_all);
    return runtime;
  };
  auto panicked = podman({"run", "--rm",
                          "--runtime=" + runtime_with("panic",
                                                      "kernel_params = \"rdinit=/nonexistent\"\n"
                                                      "enable_debug = true\n"),
                          kImage, "true"});
  EXPECT_NE(panicked.exit_code, 0);
  EXPECT_NE(panicked.err.find("the guest kernel panicked while starting (Kernel panic - not "
                              "syncing: VFS: Unable to mount root fs"),
            std::string::npos)
      << panicked.err;
  EXPECT_NE(panicked.err.find("; the console's last lines: "), std::string::npos) << panicked.err;
  size_t kept = panicked.err.find("the console log is kept in /run/vessel/");
  ASSERT_NE(kept, std::string::npos) << panicked.err;
  std::string path = panicked.err.substr(kept + 27);
  path = path.substr(0, path.find_first_of("\n\" "));
  std::string log;
  std::getline(std::ifstream(path), log, '\0');
  EXPECT_NE(log.find("Kernel panic"), std::string::npos) << path;
  std::filesystem::remove(path);

  auto exited = podman(
      {"run", "--rm",
       "--runtime=" + runtime_with("exits", "path = \"" + build_dir() +
                                                "/tests/hostile-qemu\"\n"
                                                "kernel_params = \"vessel.hostile=agent-exits\"\n"),
       kImage, "true"});
  EXPECT_NE(exited.exit_code, 0);
  EXPECT_NE(exited.err.find("vessel-agent, the guest's init, exited before the container was "
                            "created (Kernel panic - not syncing: Attempted to kill init! "
                            "exitcode=0x00000100); the console's last lines: Run /init as init "
                            "process | vessel-agent: error: no virtio port named vessel.0 | Kernel "
                            "panic - not syncing: Attempted to kill init! exitcode=0x00000100"),
            std::string::npos)
      << exited.err;
  EXPECT_EQ(processes_matching("hostile-qemu"), std::vector<std::string>{});

  auto refused =
      podman({"run", "--rm",
              "--runtime=" + runtime_with("machine", "machine_type = \"no-such-machine\"\n"),
              kImage, "true"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("the VM stopped while starting (QEMU: "), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("unsupported machine type"), std::string::npos) << refused.err;
  EXPECT_EQ(sh("ls /run/vessel | grep -v -e kvm-probe -e tsc-khz -e console.log -e templates").out,
            state_before)
      << "no state left";
}

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

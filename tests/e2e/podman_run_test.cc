// `podman run` and `podman exec` under vessel: the guest, stdio byte for byte, exit codes,
// terminals, run flags as runc shows them, and a guest that dies while starting.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/harness.h"
#include "support/podman_fixture.h"

namespace vessel::test {

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

TEST_F(PodmanTest, TerminalIsAPtyInTheGuest) {
  // conmon receives the master of a host pty through the console socket; the shim relays its
  // slave to a pty the agent made inside the guest, whose line discipline turns \n into \r\n.
  auto result = podman(podman_run({"--rm", "-t", kImage, "sh", "-c", "tty; echo hi; exit 4"}));
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_EQ(result.out, "/dev/pts/0\r\nhi\r\n");
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

}  // namespace vessel::test

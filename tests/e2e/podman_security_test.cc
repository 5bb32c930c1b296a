// Privileges under Podman: the container's capabilities and protected paths exactly runc's, and
// QEMU and the shim without the host's.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "support/harness.h"
#include "support/podman_fixture.h"

namespace vessel::test {

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

}  // namespace vessel::test

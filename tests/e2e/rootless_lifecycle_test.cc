// Rootless Podman's lifecycle verbs under vessel: kill, stop and rm with nothing left, a hostile
// guest ended, and the everyday verbs and flags as with rootless runc.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

TEST_F(RootlessTest, StopKillAndRemove) {
  auto started =
      podman(std::string("run -d --runtime=vessel ") + kImage +
             " sh -c \"trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done\"");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  for (int i = 0; i < 100 && podman("logs " + id).out.find("ready") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(podman("kill -s USR1 " + id).exit_code, 0);
  bool got = false;
  for (int i = 0; i < 100 && !got; ++i) {
    got = podman("logs " + id).out.find("got-usr1") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(got);
  auto stopped = podman("stop -t 1 " + id);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(podman("inspect -f '{{.State.ExitCode}}' " + id).out, "137\n")
      << "sh as PID 1 ignores TERM: KILL after 1 s";
  EXPECT_EQ(podman("rm " + id).exit_code, 0);
  expect_nothing_left();
}

// A guest that ignores signals, or floods the shim, still goes when the user's Podman says so.
TEST_F(RootlessTest, StopAndForcedRemovalEndAHostileGuest) {
  std::string dir = prefix() + "/hostile";
  ASSERT_EQ(
      sh("mkdir -p " + dir + " && cp " + build_dir() + "/tests/hostile-qemu " + dir).exit_code, 0);
  for (const std::string mode : {"ignore-signals", "data-flood"}) {
    std::ofstream(dir + "/" + mode + ".toml")
        << "[hypervisor.qemu]\npath = \"" << dir << "/hostile-qemu\"\nkernel_params = "
        << "\"vessel.hostile=" << mode << "\"\n"
        << kNoTemplates;
    std::ofstream(dir + "/vessel-" + mode)
        << "#!/bin/sh\nexport VESSEL_CONFIG=" << dir << "/" << mode << ".toml\nexec " << prefix()
        << "/bin/vessel \"$@\"\n";
    sh("chmod -R a+rX " + dir + " && chmod a+x " + dir + "/vessel-" + mode);
    auto started =
        podman("run -d --runtime=" + dir + "/vessel-" + mode + " " + kImage + " sleep 1000");
    ASSERT_EQ(started.exit_code, 0) << started.err;
    std::string id = started.out.substr(0, started.out.find('\n'));
    auto before = std::chrono::steady_clock::now();
    auto ended = podman((mode == "ignore-signals" ? "stop -t 1 " : "rm -f -t 0 ") + id);
    EXPECT_EQ(ended.exit_code, 0) << mode << ": " << ended.err;
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(15)) << mode;
    EXPECT_EQ(run({"pgrep", "-a", "-u", kUser, "-f", "hostile-qemu"}).out, "") << mode;
    podman("rm -f " + id);
  }
  expect_nothing_left();
}

// Everyday verbs and flags as an unprivileged user, each checked by its effect, under rootless
// runc and vessel in the same test.
TEST_F(RootlessTest, EverydayVerbsAndFlagsMatchRootlessRunc) {
  auto observe = [&](const std::string& runtime) {
    std::string seen;
    auto note = [&](const std::string& what, const CommandResult& result) {
      seen += what + ": " + std::to_string(result.exit_code) + " " + result.out;
      if (result.out.empty() || result.out.back() != '\n') seen += "\n";
    };
    const std::string run = "run --runtime=" + runtime + " ";
    const std::string dir = "/tmp/vessel-rootless-verbs-" + runtime;
    as_user(kUser, "rm -rf " + dir + "; mkdir -p " + dir + " && echo host-line > " + dir +
                       "/file && echo sibling > " + dir + "/sibling");
    note("file bind", podman(run + "--rm -v " + dir + "/file:/f " + kImage +
                             " sh -c 'cat /f; echo guest-line >> /f; ls / | grep -c sibling'"));
    note("file on host", as_user(kUser, "cat " + dir + "/file"));
    auto started = podman(run + "-d -v " + dir + "/file:/f " + kImage +
                          " sh -c 'echo ready; exec sleep 1000'");
    std::string id = started.out.substr(0, started.out.find('\n'));
    as_user(kUser, "echo host-again >> " + dir + "/file");
    note("host write seen", podman("exec " + id + " tail -1 /f"));
    note("restart", podman("restart -t 0 " + id +
                           " >/dev/null && podman inspect -f "
                           "'{{.State.Status}}' " +
                           id));
    note("logs after restart", podman("logs " + id));
    podman("rm -f -t 0 " + id);
    note("init",
         podman(run + "--rm --init " + kImage + " sh -c 'tr \"\\0\" \" \" < /proc/1/cmdline'"));
    started = podman(run + "-d " + kImage +
                     " sh -c 'for i in 1 2 3; do echo line$i; sleep 0.3; done; exit 5'");
    id = started.out.substr(0, started.out.find('\n'));
    note("logs -f", podman("logs -f " + id));
    note("wait", podman("wait " + id));
    podman("rm " + id);
    note("read-only",
         podman(run + "--rm --read-only --tmpfs /scratch " + kImage +
                " sh -c 'touch /scratch/a && echo tmpfs-rw; touch /x || echo root-ro'"));
    note("overlay", podman(run + "--rm -v " + dir + ":/o:O " + kImage +
                           " sh -c 'echo changed > /o/sibling; cat /o/sibling'"));
    note("sibling on host", as_user(kUser, "cat " + dir + "/sibling"));
    as_user(kUser, "rm -rf " + dir);
    return seen;
  };
  std::string runc = observe("runc");
  std::string ours = observe("vessel");
  EXPECT_EQ(ours, runc);
  EXPECT_NE(runc.find("file on host: 0 host-line\nguest-line\n"), std::string::npos) << runc;
  EXPECT_NE(runc.find("host write seen: 0 host-again\n"), std::string::npos) << runc;
  EXPECT_NE(runc.find("file bind: 1 host-line\n0\n"), std::string::npos)
      << "no sibling of the bound file is visible: " << runc;
  EXPECT_NE(runc.find("sibling on host: 0 sibling\n"), std::string::npos) << runc;
  expect_nothing_left();
}

}  // namespace vessel::test

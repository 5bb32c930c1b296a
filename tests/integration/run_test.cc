// vessel without Podman, like runc (real QEMU, TCG here; the real guest kernel and agent): `run`
// and `exec`, the program's stdio, exit status and errors, and the descriptors a caller holds.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

TEST_F(RuntimeTest, RunsABundleInAVmWithoutPodman) {
  make_busybox_bundle(m_bundle, {"sh", "-c", "uname -r; hostname; echo out; echo err >&2; exit 3"});
  auto result = vessel_cmd({"run", "plain"});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  std::string guest_release = result.out.substr(0, result.out.find('\n'));
  EXPECT_TRUE(guest_release.ends_with("-vessel")) << result.out;
  EXPECT_NE(guest_release, host_kernel_release());
  EXPECT_EQ(result.out.substr(result.out.find('\n') + 1), "vessel-test\nout\n");
  EXPECT_EQ(without_warnings(result.err), "err\n");
  expect_nothing_left("plain");
}

TEST_F(RuntimeTest, RunRelaysStdin) {
  make_busybox_bundle(m_bundle, {"sh", "-c", "cat; exit 5"});
  std::string input(3 << 20, '\0');
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>((i * 2654435761u) >> 13);
  auto result = vessel_cmd({"run", "stdin"}, {.input = input});
  EXPECT_EQ(result.exit_code, 5) << result.err;
  EXPECT_TRUE(result.out == input)
      << "stdout differs from stdin (" << result.out.size() << " bytes)";
  expect_nothing_left("stdin");
}

TEST_F(RuntimeTest, InheritedDescriptorsDoNotKeepTheShimsReportOpen) {
  // Callers (ctest, conmon) may leave fds 3 and 4 open; the report pipe then lands on fd 5,
  // which must not be mistaken for slirp4netns' exit pipe and handed to the shim.
  make_busybox_bundle(m_bundle, {"sh", "-c", "echo ran"});
  auto result = sh(
      "exec 3</dev/null; exec 4</dev/null; exec " + vessel() + " --root " + m_root + " run inherit",
      {.cwd = m_bundle, .timeout_seconds = 60});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "ran\n");
  expect_nothing_left("inherit");
}

// Host descriptors cannot cross into a VM: --preserve-fds is refused in one sentence (Podman's
// `run --preserve-fds N`), never silently dropped; 0 is what Podman passes otherwise.
TEST_F(RuntimeTest, PreservedDescriptorsAreRefusedInOneSentence) {
  make_busybox_bundle(m_bundle, {"true"});
  auto result = vessel_cmd({"create", "--preserve-fds", "2", "--bundle", m_bundle, "fds"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "vessel: --preserve-fds 2: a container in a VM cannot be handed the host's open files; "
            "pass the data through a volume, a pipe on stdin, or the network instead\n");
  expect_nothing_left("fds");
  auto none = vessel_cmd({"run", "--preserve-fds", "0", "--bundle", m_bundle, "fds"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  expect_nothing_left("fds");
}

TEST_F(RuntimeTest, ExecRunsInTheContainersNamespacesWithItsOwnStdioAndStatus) {
  make_busybox_bundle(m_bundle, {"sh", "-c", "echo init-was-here > /tmp/init; sleep 1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "execs"}).exit_code, 0);
  auto before = vessel_cmd({"exec", "execs", "true"});
  EXPECT_EQ(before.err, "vessel: cannot exec in container \"execs\": it is created, not running\n");
  ASSERT_EQ(vessel_cmd({"start", "execs"}).exit_code, 0);
  for (int i = 0; i < 100 && !std::filesystem::exists(m_bundle + "/rootfs/tmp/init"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

  auto result = vessel_cmd(
      {"exec", "execs", "sh", "-c", "cat /tmp/init; hostname; echo $$; cat; echo err >&2; exit 6"},
      {.input = "from-stdin\n"});
  EXPECT_EQ(result.exit_code, 6) << result.err;
  EXPECT_EQ(result.out, "init-was-here\nvessel-test\n2\nfrom-stdin\n")
      << "same root, uts and pid namespace";
  EXPECT_EQ(result.err, "err\n");

  std::ofstream(m_dir.path() + "/process.json")
      << R"({"args":["nosuch"],"cwd":"/","env":["PATH=/bin"]})";
  auto missing = vessel_cmd({"exec", "--process", m_dir.path() + "/process.json", "execs"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "vessel: exec: \"nosuch\": executable file not found in $PATH\n");

  // Detached, as conmon asks: the pid file names a relay that exits with the process's status.
  std::string pid_file = m_dir.path() + "/exec.pid";
  std::ofstream(m_dir.path() + "/process.json") << R"({"args":["sh","-c","exit 4"],"cwd":"/"})";
  auto detached = vessel_cmd({"exec", "--detach", "--pid-file", pid_file, "--process",
                              m_dir.path() + "/process.json", "execs"},
                             {.detach_output = true});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  std::string pid_text;
  std::ifstream(pid_file) >> pid_text;
  int status = 0;
  ASSERT_EQ(::waitpid(std::stoi(pid_text), &status, 0), std::stoi(pid_text));
  EXPECT_EQ(WEXITSTATUS(status), 4);

  ASSERT_EQ(vessel_cmd({"delete", "--force", "execs"}).exit_code, 0);
  expect_nothing_left("execs");
}

TEST_F(RuntimeTest, ProgramNotFoundIsReportedAtCreateLikeRunc) {
  make_busybox_bundle(m_bundle, {"no-such-program"});
  auto result = vessel_cmd({"create", "--bundle", m_bundle, "notfound"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "vessel: exec: \"no-such-program\": executable file not found in $PATH\n");
  expect_nothing_left("notfound");
}

}  // namespace vessel::test

// `podman run` as an unprivileged user: the guest kernel and uid 0 inside, stdio and exit codes,
// and terminals typed into (Ctrl-C, resize, `exec -it`, detach and attach).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

TEST_F(RootlessTest, RunsInItsOwnVmWithStdioAndExitCode) {
  auto result = podman(std::string("run --rm --runtime=vessel ") + kImage +
                       " sh -c 'uname -r; id -u; echo err >&2; exit 3'");
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_TRUE(result.out.find("-vessel\n0\n") != std::string::npos) << result.out;
  EXPECT_EQ(result.out.substr(0, result.out.find('\n')).find(host_kernel_release()),
            std::string::npos);
  EXPECT_EQ(result.err, "err\n");
  auto input = podman(std::string("run --rm -i --runtime=vessel ") + kImage + " sh -c 'wc -c'",
                      {.input = std::string(1 << 20, 'x')});
  EXPECT_EQ(input.out, "1048576\n");
  expect_nothing_left();
}

// A terminal typed into, as the user: keystrokes, Ctrl-C reaching the foreground program, an
// exit code.
TEST_F(RootlessTest, TerminalsTakeKeystrokesCtrlCResizesDetachAttachAndExitCodes) {
  const std::string name = "vessel-rootless-tty";
  podman("rm -f -t 0 " + name);
  // runuser's own pty (-P) passes the terminal's resizes on, as a login would.
  auto as_user_command = [&](const std::string& command) {
    return "runuser -P -l " + std::string(kUser) + " -c \"cd /tmp && " + command + "\"";
  };
  Terminal tty("vessel-rootless-tty", as_user_command("podman run --name " + name +
                                                      " -it --runtime=vessel " + kImage + " sh"));
  ASSERT_TRUE(tty.shows("/ #")) << tty.screen();
  tty.type("echo hello-$((6*7))");
  tty.press("Enter");
  EXPECT_TRUE(tty.shows("hello-42")) << tty.screen();
  tty.type("sleep 100");
  tty.press("Enter");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  tty.press("C-c");
  tty.type("echo after-$?");
  tty.press("Enter");
  EXPECT_TRUE(tty.shows("after-130")) << tty.screen();
  tty.resize(100, 25);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  tty.type("stty size");
  tty.press("Enter");
  EXPECT_TRUE(tty.shows("25 100")) << tty.screen();
  {
    Terminal exec_tty("vessel-rootless-exec", as_user_command("podman exec -it " + name + " sh"));
    ASSERT_TRUE(exec_tty.shows("/ #")) << exec_tty.screen();
    exec_tty.type("echo exec-$((1+1))");
    exec_tty.press("Enter");
    EXPECT_TRUE(exec_tty.shows("exec-2")) << exec_tty.screen();
    exec_tty.press("C-d");
    EXPECT_TRUE(exec_tty.shows("exited-0")) << exec_tty.screen();
  }
  tty.press("C-p");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  tty.press("C-q");
  EXPECT_TRUE(tty.shows("exited-0")) << tty.screen();
  EXPECT_EQ(podman("inspect -f '{{.State.Status}}' " + name).out, "running\n");
  Terminal attach("vessel-rootless-attach", as_user_command("podman attach " + name));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  attach.type("echo again-$((2+3))");
  attach.press("Enter");
  EXPECT_TRUE(attach.shows("again-5")) << attach.screen();
  attach.type("exit 3");
  attach.press("Enter");
  EXPECT_TRUE(attach.shows("exited-")) << attach.screen();
  for (int i = 0; i < 50 && podman("inspect -f '{{.State.Status}}' " + name).out != "exited\n"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(podman("inspect -f '{{.State.ExitCode}}' " + name).out, "3\n");
  podman("rm -f " + name);
  expect_nothing_left();
}

}  // namespace vessel::test

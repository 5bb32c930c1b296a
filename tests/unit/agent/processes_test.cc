// The agent's process table and held signals, with real child processes: ids bounded and unique,
// output relayed until end of file before an exit is reported, every child reaped; a signal for
// an init that has just started waits until its program handles it, one for anything else goes
// at once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent/held_signals.h"
#include "agent/process_table.h"
#include "common/channel/messages.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

// A child that runs `body` and exits with its result; its stdout is `out`.
pid_t spawn(int out, int (*body)()) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, 1);
    ::_exit(body());
  }
  return pid;
}

bool alive(pid_t pid) {
  int status;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}

}  // namespace

TEST(ProcessTableTest, IdsAreBoundedUniqueAndNeverTheInit) {
  ProcessTable table;
  EXPECT_FALSE(table.check_new(0)) << "0 is the container's init";
  EXPECT_FALSE(table.check_new(channel::kMaxProcessId + 1));
  EXPECT_TRUE(table.check_new(7));
  ContainerStdio stdio{UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC)),
                       UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), UniqueFd()};
  table.add(7, 0, 12345, stdio);
  EXPECT_FALSE(table.check_new(7)) << "taken";
  EXPECT_TRUE(table.running(7));
  Process* process = table.find(7);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->terminal_fd, process->stdin->fd()) << "no stderr: a terminal";
}

TEST(ProcessTableTest, AnExitIsReportedOnlyOnceItsOutputReachedEndOfFile) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ASSERT_EQ(::sigprocmask(SIG_BLOCK, &mask, nullptr), 0);
  UniqueFd signals(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  int sockets[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets), 0);
  channel::Channel channel{UniqueFd(sockets[0])};
  UniqueFd guest_end(sockets[1]);

  auto out = sys::pipe();
  auto err = sys::pipe();
  auto in = sys::pipe();
  ASSERT_TRUE(out && err && in);
  pid_t pid = spawn(out->write.get(), [] {
    (void)!::write(1, "hi", 2);
    return 3;
  });
  out->write.reset();
  err->write.reset();
  ContainerStdio stdio{std::move(in->write), std::move(out->read), std::move(err->read)};
  ProcessTable table;
  table.add(1, 1, pid, stdio);
  // Reaped, but its output is still in the pipe: not finished yet.
  for (int i = 0; i < 100 && table.running(1); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    table.reap(signals.get());
  }
  ASSERT_FALSE(table.running(1));
  EXPECT_EQ(table.draining(), std::vector<uint32_t>{1});
  EXPECT_TRUE(table.finished().empty());
  // Relaying reads the output and its end of file.
  for (int i = 0; i < 10 && !table.finished().size(); ++i) {
    std::vector<pollfd> fds;
    table.add_poll_fds(fds);
    for (const auto& entry : fds) (void)table.on_ready(entry.fd, channel);
  }
  EXPECT_EQ(table.finished(), std::vector<uint32_t>{1});
  EXPECT_TRUE(WIFEXITED(*table.find(1)->status));
  EXPECT_EQ(WEXITSTATUS(*table.find(1)->status), 3);
  ::sigprocmask(SIG_UNBLOCK, &mask, nullptr);
}

TEST(HeldSignalsTest, AJustStartedInitGetsItsSignalOnlyOnceItHandlesIt) {
  pid_t child = ::fork();
  if (child == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::signal(SIGTERM, [](int) { ::_exit(42); });
    for (;;) ::pause();
  }
  HeldSignals held;
  held.started(0);
  held.send(0, child, SIGTERM);
  EXPECT_EQ(held.timeout_ms(), 10) << "a held signal is looked at every 10 ms";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  held.release();
  EXPECT_TRUE(alive(child)) << "no handler yet: the signal waits";
  int status = 0;
  for (int i = 0; i < 200 && ::waitpid(child, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    held.release();
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42) << "delivered to its handler";
  EXPECT_EQ(held.timeout_ms(), -1);
}

TEST(HeldSignalsTest, AnythingButASettlingInitGetsItsSignalAtOnce) {
  pid_t child = ::fork();
  if (child == 0)
    for (;;) ::pause();
  HeldSignals held;
  held.send(5, child, SIGTERM);  // an exec'd process: never held
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  EXPECT_EQ(held.timeout_ms(), -1);
}

}  // namespace vessel::agent

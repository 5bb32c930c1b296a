// vessel under Docker and containerd, as root: each test suite starts a private daemon of
// Debian's docker.io or containerd (its own sockets, data and state under a temporary directory;
// the host's daemons, if any, are left alone) with vessel registered beside runc, and drives it
// with the daemon's own client, runc in the same test where the two should agree.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "support/harness.h"

namespace vessel::test {

namespace {

// The busybox root filesystem tests/e2e/build-image.sh made for Podman's test image.
std::string image_rootfs() { return build_dir() + "/tests/image"; }

bool wait_until(const std::function<bool()>& ready, int seconds = 60) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// A private dockerd on its own bridge (no iptables rules on the host: published ports go through
// Docker's userland proxy), with vessel in "runtimes".
class Docker {
 public:
  static constexpr const char* kBridge = "vessel-dk0";
  static constexpr const char* kImage = "vessel-docker-test";

  Docker() {
    m_why_not = start();
    if (!m_why_not.empty()) stop();
  }
  ~Docker() { stop(); }

  const std::string& why_not() const { return m_why_not; }
  const std::string& exec_root() const { return m_exec_root; }
  std::string client() const {
    return "/usr/bin/docker -H unix://" + m_dir.path() + "/docker.sock";
  }
  CommandResult docker(const std::string& args, CommandOptions options = {}) const {
    return sh(client() + " " + args, options);
  }

 private:
  std::string start() {
    if (::access("/usr/sbin/dockerd", X_OK) != 0)
      return "dockerd is not installed: run scripts/install-deps.sh";
    if (!std::filesystem::exists(image_rootfs() + "/bin/busybox"))
      return "the test image's root filesystem is missing: run the e2e_image test first";
    sh(std::string("ip link del ") + kBridge + " 2>/dev/null");
    auto bridge = sh(std::string("ip link add ") + kBridge + " type bridge && ip addr add " +
                     "10.213.0.1/24 dev " + kBridge + " && ip link set " + kBridge + " up");
    if (bridge.exit_code != 0) return "cannot make a bridge for dockerd: " + bridge.err;
    m_exec_root = m_dir.path() + "/exec";
    std::ofstream(m_dir.path() + "/daemon.json")
        << R"({"runtimes": {"vessel": {"path": ")" << vessel() << R"("}}, "bridge": ")" << kBridge
        << R"(", "iptables": false, "ip-masq": false, "storage-driver": "vfs"})";
    m_daemon = std::make_unique<std::thread>([this] {
      sh("exec /usr/sbin/dockerd --config-file " + m_dir.path() + "/daemon.json --data-root " +
         m_dir.path() + "/data --exec-root " + m_exec_root + " --pidfile " + m_dir.path() +
         "/docker.pid -H unix://" + m_dir.path() + "/docker.sock >" + m_dir.path() +
         "/dockerd.log 2>&1");
    });
    if (!wait_until([&] { return docker("info >/dev/null 2>&1").exit_code == 0; }))
      return "dockerd did not start: " + sh("tail -3 " + m_dir.path() + "/dockerd.log").out;
    auto imported = docker("import -c 'CMD [\"/bin/sh\"]' - " + std::string(kImage),
                           {.input = sh("tar -C " + image_rootfs() + " -cf - .").out});
    if (imported.exit_code != 0) return "docker import failed: " + imported.err;
    return "";
  }

  void stop() {
    if (m_daemon) {
      docker("rm -f $(" + client() + " ps -aq) >/dev/null 2>&1");
      sh("kill $(cat " + m_dir.path() + "/docker.pid) 2>/dev/null");
      m_daemon->join();
      m_daemon.reset();
    }
    sh(std::string("ip link del ") + kBridge + " 2>/dev/null");
  }

  TempDir m_dir;
  std::string m_exec_root;
  std::string m_why_not;
  std::unique_ptr<std::thread> m_daemon;
};

class DockerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() == 0) s_docker = new Docker();
  }
  static void TearDownTestSuite() {
    delete s_docker;
    s_docker = nullptr;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "these tests start their own dockerd, which needs root";
    if (!s_docker->why_not().empty()) GTEST_SKIP() << s_docker->why_not();
  }
  CommandResult docker(const std::string& args, CommandOptions options = {}) {
    return s_docker->docker(args, options);
  }
  std::string run_vessel() { return "run --runtime=vessel "; }

  // Neither QEMU nor shim nor state: Docker's runtime root is EXEC_ROOT/runtime-runc/moby.
  void expect_nothing_left(const std::string& id) {
    EXPECT_EQ(processes_matching("vessel-" + id), std::vector<std::string>{});
    EXPECT_FALSE(std::filesystem::exists(s_docker->exec_root() + "/runtime-runc/moby/" + id));
  }

  static Docker* s_docker;
};

Docker* DockerTest::s_docker = nullptr;

}  // namespace

// Exit codes and stdio as with runc, but on the guest's kernel. Docker's state directories are
// deeper than a socket address can hold (the shim's socket is reached through its directory).
TEST_F(DockerTest, RunPrintsTheGuestKernelAndExitsWithTheCode) {
  std::string image = Docker::kImage;
  auto in_vm = docker(run_vessel() + "--rm " + image + " sh -c 'uname -r; echo err >&2; exit 3'");
  EXPECT_EQ(in_vm.exit_code, 3) << in_vm.err;
  EXPECT_TRUE(in_vm.out.ends_with("-vessel\n")) << in_vm.out;
  EXPECT_EQ(without_warnings(in_vm.err), "err\n");
  auto with_runc = docker("run --rm " + image + " sh -c 'uname -r; echo err >&2; exit 3'");
  EXPECT_EQ(with_runc.exit_code, 3);
  EXPECT_EQ(with_runc.out, host_kernel_release() + "\n");

  // stdin as a pipe (-i), and a volume written inside, read on the host.
  TempDir volume;
  auto piped = docker(run_vessel() + "--rm -i -v " + volume.path() + ":/data " + image +
                          " sh -c 'cat > /data/from-guest; cat /data/from-guest'",
                      {.input = "through docker\n"});
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out, "through docker\n");
  EXPECT_EQ(sh("cat " + volume.path() + "/from-guest").out, "through docker\n");
}

// The default bridge network: Docker moves the container's veth in with a prestart hook, after
// create; `vessel start` plumbs it to the VM. A published port reaches the guest's server.
TEST_F(DockerTest, DetachedWithAPublishedPortExecAndRemove) {
  std::string image = Docker::kImage;
  auto started = docker(run_vessel() + "-d --name web -p 18093:80 " + image +
                        " sh -c 'echo served-by-the-guest > /tmp/index.html; exec httpd -f -p 80 "
                        "-h /tmp'");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  std::string page;
  EXPECT_TRUE(wait_until([&] {
    page = sh("curl -s -m 2 http://127.0.0.1:18093/index.html").out;
    return !page.empty();
  }));
  EXPECT_EQ(page, "served-by-the-guest\n");
  auto address = docker("exec web sh -c 'ip -4 addr show eth0 | grep -o \"inet [0-9.]*\"'");
  EXPECT_EQ(address.out, "inet " + docker("inspect -f '{{.NetworkSettings.IPAddress}}' web").out);
  auto exec = docker("exec web sh -c 'uname -r; exit 5'");
  EXPECT_EQ(exec.exit_code, 5);
  EXPECT_TRUE(exec.out.ends_with("-vessel\n")) << exec.out;
  EXPECT_EQ(docker("exec -i web cat", {.input = "exec stdin\n"}).out, "exec stdin\n");

  EXPECT_EQ(docker("stop -t 2 web").exit_code, 0);
  EXPECT_EQ(docker("inspect -f '{{.State.Running}}' web").out, "false\n");
  EXPECT_EQ(docker("rm -f web").exit_code, 0);
  expect_nothing_left(id);

  auto killed = docker(run_vessel() + "-d " + image + " sleep 1000");
  std::string killed_id = killed.out.substr(0, killed.out.find('\n'));
  EXPECT_EQ(docker("kill " + killed_id).exit_code, 0);
  EXPECT_EQ(docker("wait " + killed_id).out, "137\n");
  EXPECT_EQ(docker("rm " + killed_id).exit_code, 0);
  expect_nothing_left(killed_id);
}

// docker run -it: typed keys, the window size and its change, the shell's exit code.
TEST_F(DockerTest, InteractiveTerminal) {
  Terminal tty("vessel-docker",
               s_docker->client() + " " + run_vessel() + "-it --rm " + Docker::kImage + " sh");
  ASSERT_TRUE(tty.shows("/ #")) << tty.screen();
  tty.type("echo typed-$((6*7))");
  tty.press("Enter");
  EXPECT_TRUE(tty.shows("typed-42")) << tty.screen();
  tty.resize(91, 27);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  tty.type("stty size");
  tty.press("Enter");
  EXPECT_TRUE(tty.shows("27 91")) << tty.screen();
  tty.type("exit 9");
  tty.press("Enter");
  EXPECT_TRUE(tty.shows("exited-9")) << tty.screen();
}

namespace {

// A private containerd (its own socket, root and state) driven with ctr.
class ContainerdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || ::access("/usr/bin/containerd", X_OK) != 0) return;
    s_dir = new TempDir();
    std::ofstream(s_dir->path() + "/config.toml")
        << "version = 2\nroot = \"" << s_dir->path() << "/root\"\nstate = \"" << s_dir->path()
        << "/state\"\n[grpc]\n  address = \"" << s_dir->path() << "/containerd.sock\"\n";
    s_daemon = new std::thread([] {
      sh("exec /usr/bin/containerd --config " + s_dir->path() + "/config.toml >" + s_dir->path() +
         "/containerd.log 2>&1");
    });
    s_ready = wait_until([] { return ctr("version >/dev/null 2>&1").exit_code == 0; });
  }
  static void TearDownTestSuite() {
    if (!s_daemon) return;
    sh("pkill -f 'containerd --config " + s_dir->path() + "'");
    s_daemon->join();
    delete s_daemon;
    s_daemon = nullptr;
    sh("umount -R " + s_dir->path() + "/state 2>/dev/null; true");
    delete s_dir;
    s_dir = nullptr;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "these tests start their own containerd, as root";
    if (::access("/usr/bin/containerd", X_OK) != 0)
      GTEST_SKIP() << "containerd is not installed: run scripts/install-deps.sh";
    if (!s_ready) GTEST_SKIP() << "containerd did not start: see " << s_dir->path();
    // ctr --rootfs uses the directory itself: each test gets its own copy.
    ASSERT_EQ(sh("cp -a " + image_rootfs() + " " + m_rootfs.path() + "/rootfs").exit_code, 0);
  }

  static CommandResult ctr(const std::string& args, CommandOptions options = {}) {
    return sh("/usr/bin/ctr -a " + s_dir->path() + "/containerd.sock " + args, options);
  }
  // `ctr run FLAGS` through containerd's runc v2 shim with vessel as its BinaryName; the root
  // filesystem directory is the first operand (then the id and the command).
  std::string run_vessel(const std::string& flags) {
    return "run --runc-binary " + vessel() + " " + flags + " --rootfs " + m_rootfs.path() +
           "/rootfs ";
  }

  TempDir m_rootfs;
  static TempDir* s_dir;
  static std::thread* s_daemon;
  static bool s_ready;
};

TempDir* ContainerdTest::s_dir = nullptr;
std::thread* ContainerdTest::s_daemon = nullptr;
bool ContainerdTest::s_ready = false;

}  // namespace

TEST_F(ContainerdTest, CtrRunsAContainerInAVmWithItsExitCode) {
  auto result = ctr(run_vessel("--rm") + "ctr-exit sh -c 'uname -r; exit 4'");
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_TRUE(result.out.ends_with("-vessel\n")) << result.out;
  EXPECT_EQ(ctr("containers ls -q").out, "");
  EXPECT_EQ(processes_matching("vessel-ctr-exit"), std::vector<std::string>{});
}

// The task lifecycle: a detached task, exec'd processes with stdin and exit codes, kill, delete.
TEST_F(ContainerdTest, TaskExecKillAndDelete) {
  ASSERT_EQ(ctr(run_vessel("-d") + "ctr-task sleep 1000").exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return ctr("task ls").out.find("RUNNING") != std::string::npos; }))
      << ctr("task ls").out;
  auto exec = ctr("task exec --exec-id e1 ctr-task sh -c 'uname -r; exit 6'");
  EXPECT_EQ(exec.exit_code, 6);
  EXPECT_TRUE(exec.out.ends_with("-vessel\n")) << exec.out;
  EXPECT_EQ(ctr("task exec --exec-id e2 ctr-task cat", {.input = "to the task\n"}).out,
            "to the task\n");
  auto processes = ctr("task ps ctr-task");
  EXPECT_EQ(processes.exit_code, 0) << processes.err;
  EXPECT_EQ(ctr("task kill -s SIGKILL ctr-task").exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return ctr("task ls").out.find("STOPPED") != std::string::npos; }));
  EXPECT_EQ(ctr("task delete ctr-task").exit_code, 0);
  EXPECT_EQ(ctr("containers delete ctr-task").exit_code, 0);
  EXPECT_EQ(processes_matching("vessel-ctr-task"), std::vector<std::string>{});
  EXPECT_FALSE(std::filesystem::exists("/run/containerd/runc/default/ctr-task"));
}

TEST_F(ContainerdTest, CtrRunWithATerminal) {
  Terminal tty("vessel-ctr", "/usr/bin/ctr -a " + s_dir->path() + "/containerd.sock " +
                                 run_vessel("-t --rm") + "ctr-tty sh");
  ASSERT_TRUE(tty.shows("/ #")) << tty.screen();
  tty.type("echo typed-$((2*21)); exit 7");
  tty.press("Enter");
  EXPECT_TRUE(tty.shows("typed-42")) << tty.screen();
  EXPECT_TRUE(tty.shows("exited-7")) << tty.screen();
}

}  // namespace vessel::test

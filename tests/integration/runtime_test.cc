// vessel without Podman, like runc: real QEMU (TCG here), the real guest kernel and agent.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
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

TEST_F(RuntimeTest, ProcessGetsItsUserGroupsCwdAndEnv) {
  make_busybox_bundle(
      m_bundle,
      {"sh", "-c",
       "id -u; id -g; id -G; pwd; echo $GREETING; touch /tmp/mine; stat -c %u:%g /tmp/mine"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["process"]["user"] = {{"uid", 1000}, {"gid", 1001}, {"additionalGids", {20, 30}}};
  config["process"]["cwd"] = "/tmp";
  config["process"]["env"].push_back("GREETING=hello from the guest");
  std::filesystem::permissions(m_bundle + "/rootfs/tmp", std::filesystem::perms::all);
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "user"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "1000\n1001\n1001 20 30\n/tmp\nhello from the guest\n1000:1001\n");
  struct stat st {};
  ASSERT_EQ(::stat((m_bundle + "/rootfs/tmp/mine").c_str(), &st), 0)
      << "written through 9p to the host";
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
}

TEST_F(RuntimeTest, RlimitsSysctlsNoNewPrivilegesAndMaskedAndReadonlyPaths) {
  make_busybox_bundle(
      m_bundle,
      {"sh", "-c",
       "ulimit -n; cat /proc/sys/net/ipv4/ip_forward; grep NoNewPrivs /proc/self/status; "
       "cat /etc/secret/key; wc -c < /etc/hidden; echo x > /etc/frozen/f || echo frozen"});
  std::filesystem::create_directories(m_bundle + "/rootfs/etc/secret");
  std::filesystem::create_directories(m_bundle + "/rootfs/etc/frozen");
  std::ofstream(m_bundle + "/rootfs/etc/secret/key") << "leaked";
  std::ofstream(m_bundle + "/rootfs/etc/hidden") << "leaked too";
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 321}, {"hard", 654}}};
  config["process"]["noNewPrivileges"] = true;
  config["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  config["linux"]["maskedPaths"] = {"/etc/secret", "/etc/hidden"};
  config["linux"]["readonlyPaths"] = {"/etc/frozen"};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "hardened"});
  EXPECT_EQ(result.out, "321\n1\nNoNewPrivs:\t1\n0\nfrozen\n") << result.err;
}

TEST_F(RuntimeTest, SeccompProfileIsEnforcedInTheGuest) {
  make_busybox_bundle(
      m_bundle, {"sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/made || echo refused"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "filtered"});
  EXPECT_EQ(result.out, "Seccomp:\t2\nrefused\n") << result.err;
  EXPECT_NE(result.err.find("Operation not permitted"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(m_bundle + "/rootfs/tmp/made"));
}

TEST_F(RuntimeTest, VcpusAndMemoryComeFromTheConfiguration) {
  make_busybox_bundle(
      m_bundle, {"sh", "-c", "grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo"});
  std::string config = m_dir.path() + "/configuration.toml";
  std::ofstream(config) << "[hypervisor.qemu]\ndefault_vcpus = 2\ndefault_memory = 512\n";
  auto result = vessel_cmd({"run", "sized"}, {.env = {{"VESSEL_CONFIG", config}}});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.out.starts_with("2\n")) << result.out;
  long kib = std::stol(result.out.substr(result.out.find(':') + 1));
  EXPECT_GT(kib, 400 * 1024);
  EXPECT_LT(kib, 512 * 1024);
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

// Docker and containerd call vessel as they call runc: with runc's global flags and a state root
// whose paths are longer than a socket address holds (Docker's is
// /var/run/docker/runtime-runc/moby/<64-hex id>).
TEST_F(RuntimeTest, RuncsGlobalFlagsAndAStateRootDeeperThanASocketAddress) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  const std::string deep = m_root + "/" + std::string(60, 'd') + "/" + std::string(64, 'e');
  auto as_runc = [&](std::vector<std::string> args, CommandOptions options = {}) {
    std::vector<std::string> argv = {vessel(),
                                     "--root",
                                     deep,
                                     "--log",
                                     m_dir.path() + "/log.json",
                                     "--log-format",
                                     "json",
                                     "--debug",
                                     "--systemd-cgroup",
                                     "--criu",
                                     "/usr/sbin/criu",
                                     "--rootless",
                                     "false"};
    argv.insert(argv.end(), args.begin(), args.end());
    options.cwd = m_bundle;
    return run(argv, options);
  };
  auto created = as_runc({"create", "--bundle", m_bundle, "deep"}, {.detach_output = true});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  ASSERT_GT((deep + "/deep/shim.sock").size(), 108u);
  ASSERT_EQ(as_runc({"start", "deep"}).exit_code, 0);
  auto process = m_dir.path() + "/process.json";
  std::ofstream(process) << R"({"args": ["sh", "-c", "exit 5"], "cwd": "/", "env": ["PATH=/bin"]})";
  EXPECT_EQ(as_runc({"exec", "--process", process, "deep"}).exit_code, 5);
  EXPECT_EQ(as_runc({"delete", "--force", "deep"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(deep + "/deep"));
  EXPECT_EQ(processes_matching("vessel-deep "), std::vector<std::string>{});
}

TEST_F(RuntimeTest, CreateStartStateKillDeleteFollowTheOciLifecycle) {
  make_busybox_bundle(
      m_bundle,
      {"sh", "-c", "trap 'exit 9' USR1; echo started > /tmp/marker; while :; do sleep 0.1; done"});
  std::string pid_file = m_dir.path() + "/pid";
  auto created = vessel_cmd({"create", "--bundle", m_bundle, "--pid-file", pid_file, "life"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string pid_text;
  std::ifstream(pid_file) >> pid_text;
  pid_t shim = std::stoi(pid_text);

  auto state = read_json(vessel_cmd({"state", "life"}).out);
  EXPECT_EQ(state["status"], "created");
  EXPECT_EQ(state["pid"], shim);
  EXPECT_EQ(state["bundle"], m_bundle);
  EXPECT_EQ(state["id"], "life");
  EXPECT_FALSE(std::filesystem::exists(m_bundle + "/rootfs/tmp/marker"))
      << "create must not run the program";

  auto started = vessel_cmd({"start", "life"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_EQ(read_json(vessel_cmd({"state", "life"}).out)["status"], "running");
  auto again = vessel_cmd({"start", "life"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err, "vessel: cannot start container \"life\": it is running, not created\n");
  auto busy = vessel_cmd({"delete", "life"});
  EXPECT_EQ(
      busy.err,
      "vessel: cannot delete container \"life\": it is running: stop it first or use --force\n");

  for (int i = 0; i < 100 && !std::filesystem::exists(m_bundle + "/rootfs/tmp/marker"); ++i)
    ::usleep(100000);
  ASSERT_EQ(vessel_cmd({"kill", "life", "USR1"}).exit_code, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(shim, &status, 0), shim);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 9) << "the shim exits with the workload's status";

  auto stopped = read_json(vessel_cmd({"state", "life"}).out);
  EXPECT_EQ(stopped["status"], "stopped");
  auto kill_stopped = vessel_cmd({"kill", "life", "KILL"});
  EXPECT_EQ(kill_stopped.exit_code, 1);
  EXPECT_EQ(kill_stopped.err, "vessel: cannot signal \"life\": container not running\n");
  ASSERT_EQ(vessel_cmd({"delete", "life"}).exit_code, 0);
  auto gone = vessel_cmd({"state", "life"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.err, "vessel: container \"life\" does not exist\n");
  expect_nothing_left("life");
}

TEST_F(RuntimeTest, SignalsToTheShimReachTheContainerAndQemuDiesWithTheShim) {
  make_busybox_bundle(
      m_bundle, {"sh", "-c", "trap 'echo got-usr1 > /tmp/usr1' USR1; while :; do sleep 0.1; done"});
  std::string pid_file = m_dir.path() + "/pid";
  ASSERT_EQ(
      vessel_cmd({"create", "--bundle", m_bundle, "--pid-file", pid_file, "signals"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "signals"}).exit_code, 0);
  std::string pid_text;
  std::ifstream(pid_file) >> pid_text;
  pid_t shim = std::stoi(pid_text);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let sh install its trap
  ::kill(shim, SIGUSR1);  // as a user's `kill` of the container's pid would
  for (int i = 0; i < 100 && !std::filesystem::exists(m_bundle + "/rootfs/tmp/usr1"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(std::filesystem::exists(m_bundle + "/rootfs/tmp/usr1"));

  ASSERT_FALSE(processes_matching("vessel-signals ").empty());
  ::kill(shim, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(shim, &status, 0), shim);
  bool qemu_gone = false;
  for (int i = 0; i < 50 && !qemu_gone; ++i) {
    qemu_gone = processes_matching("vessel-signals ").empty();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(qemu_gone) << "QEMU must die with its shim";
  EXPECT_EQ(read_json(vessel_cmd({"state", "signals"}).out)["status"], "stopped");
  ASSERT_EQ(vessel_cmd({"delete", "signals"}).exit_code, 0);
  expect_nothing_left("signals");
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

TEST_F(RuntimeTest, KillBeforeStartAndForcedDeleteLeaveNothing) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "early"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "early"}).exit_code, 0);
  expect_nothing_left("early");
  EXPECT_EQ(vessel_cmd({"delete", "--force", "never-existed"}).exit_code, 0)
      << "Podman deletes after failed creates";
  auto unknown = vessel_cmd({"delete", "never-existed"});
  EXPECT_EQ(unknown.err, "vessel: container \"never-existed\" does not exist\n");
}

// Each bad input: exactly one line naming the cause and the fix, exit 1, nothing left behind.
TEST_F(RuntimeTest, BadConfigJson) {
  make_busybox_bundle(m_bundle, {"true"});
  std::ofstream(m_bundle + "/config.json") << "{\"ociVersion\": ";
  auto result = vessel_cmd({"create", "--bundle", m_bundle, "bad"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(result.err.starts_with(
      "vessel: " + m_bundle + "/config.json is not valid JSON (parse error at line 1, column 16"))
      << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1);
  expect_nothing_left("bad");
}

TEST_F(RuntimeTest, MissingRootfs) {
  make_busybox_bundle(m_bundle, {"true"});
  std::filesystem::remove_all(m_bundle + "/rootfs");
  auto result = vessel_cmd({"create", "--bundle", m_bundle, "noroot"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "vessel: the container's root filesystem " + m_bundle +
                            "/rootfs does not exist: check root.path in " + m_bundle +
                            "/config.json\n");
  expect_nothing_left("noroot");
}

// OCI hooks run on the host with the state on stdin: prestart and createRuntime at create,
// poststart after start, poststop after delete; a failing createRuntime hook fails create.
// `path` runs with `args` as its argv, args[0] included: busybox, like Docker's own prestart
// hook (dockerd re-executed as libnetwork-setkey), dispatches on it.
TEST_F(RuntimeTest, HooksRunOnTheHostWithTheStateOnStdin) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  std::string out = m_dir.path() + "/hooks";
  std::filesystem::create_directories(out);
  auto hook = [&](const std::string& name) {
    return nlohmann::json{{"path", "/bin/busybox"},
                          {"args", {"sh", "-c", "cat > " + out + "/" + name + ".json"}},
                          {"timeout", 10}};
  };
  std::ifstream in(m_bundle + "/config.json");
  auto config = nlohmann::json::parse(in);
  config["hooks"] = {{"prestart", {hook("prestart")}},
                     {"createRuntime", {hook("createRuntime")}},
                     {"poststart", {hook("poststart")}},
                     {"poststop", {hook("poststop")}}};
  config["annotations"] = {{"org.example.note", "carried to every hook"}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "hooked"}).exit_code, 0);
  EXPECT_EQ(read_json(vessel_cmd({"state", "hooked"}).out)["annotations"]["org.example.note"],
            "carried to every hook");
  auto seen = [&](const std::string& name) {
    std::ifstream file(out + "/" + name + ".json");
    return nlohmann::json::parse(file, nullptr, false);
  };
  for (const char* phase : {"prestart", "createRuntime"}) {
    auto state = seen(phase);
    ASSERT_TRUE(state.is_object()) << phase;
    EXPECT_EQ(state["id"], "hooked");
    EXPECT_EQ(state["status"], "created") << phase;
    EXPECT_GT(state["pid"].get<int>(), 0);
    EXPECT_EQ(state["bundle"], m_bundle);
  }
  EXPECT_FALSE(std::filesystem::exists(out + "/poststart.json"));
  ASSERT_EQ(vessel_cmd({"start", "hooked"}).exit_code, 0);
  EXPECT_EQ(seen("poststart")["status"], "running");
  ASSERT_EQ(vessel_cmd({"delete", "--force", "hooked"}).exit_code, 0);
  EXPECT_EQ(seen("poststop")["status"], "stopped");
  for (const char* phase : {"prestart", "createRuntime", "poststart", "poststop"})
    EXPECT_EQ(seen(phase)["annotations"]["org.example.note"], "carried to every hook") << phase;
  expect_nothing_left("hooked");

  config["hooks"] = {
      {"createRuntime", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo no; exit 3"}}}}}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto failed = vessel_cmd({"create", "--bundle", m_bundle, "refused"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_EQ(failed.err, "vessel: createRuntime hook /bin/sh failed with status 3: no\n");
  expect_nothing_left("refused");

  config["hooks"] = {{"createContainer", {hook("inside")}}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto inside = vessel_cmd({"create", "--bundle", m_bundle, "inside"});
  EXPECT_EQ(inside.exit_code, 1);
  EXPECT_EQ(inside.err,
            "vessel: hooks.createContainer must run in the container's namespaces, which are "
            "inside the VM: use createRuntime or poststart hooks, which run on the host\n");
  expect_nothing_left("inside");
}

// The OCI features document says what a VM can honour: no createContainer hooks, no user
// namespace, cgroup v2 only.
TEST_F(RuntimeTest, FeaturesDocumentSaysWhatTheVmHonours) {
  auto result = run({vessel(), "features"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto features = nlohmann::json::parse(result.out);
  EXPECT_EQ(features["ociVersionMin"], "1.0.0");
  EXPECT_EQ(features["hooks"],
            nlohmann::json({"prestart", "createRuntime", "poststart", "poststop"}));
  EXPECT_EQ(features["linux"]["namespaces"],
            nlohmann::json({"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}));
  EXPECT_EQ(features["linux"]["cgroup"]["v2"], true);
  EXPECT_EQ(features["linux"]["cgroup"]["v1"], false);
  EXPECT_EQ(features["linux"]["capabilities"].back(), "CAP_CHECKPOINT_RESTORE");
  EXPECT_EQ(features["linux"]["seccomp"]["enabled"], true);
  EXPECT_EQ(features["annotations"]["io.github.vessel.isolation"], "vm");
}

// A state root somebody else made (the /tmp fallback is shared) is never used.
TEST_F(RuntimeTest, StateRootOwnedByAnotherUserOrASymlinkIsRefused) {
  make_busybox_bundle(m_bundle, {"true"});
  std::filesystem::create_directories(m_root);
  ASSERT_EQ(::chown(m_root.c_str(), 4242, 4242), 0);
  auto foreign = vessel_cmd({"create", "--bundle", m_bundle, "foreign"});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_EQ(foreign.err, "vessel: state root: " + m_root +
                             " belongs to uid 4242, not to you (uid 0): remove it, or choose "
                             "another --root\n");
  std::filesystem::remove(m_root);
  std::filesystem::create_directory_symlink(m_bundle, m_root);
  auto linked = vessel_cmd({"create", "--bundle", m_bundle, "linked"});
  EXPECT_EQ(linked.exit_code, 1);
  EXPECT_EQ(linked.err, "vessel: state root: " + m_root +
                            " is not a directory (a symlink or a file is in its place): remove "
                            "it, or choose another --root\n");
  EXPECT_FALSE(std::filesystem::exists(m_bundle + "/linked"));
}

// A bind source is opened once, and never through a symlink in its last component.
// A bind source that is a symlink shares what it points to, as mount(2) does for runc (Podman's
// --init binds /usr/libexec/podman/catatonit, a symlink).
TEST_F(RuntimeTest, BindSourceThatIsASymlinkSharesItsTarget) {
  make_busybox_bundle(m_bundle, {"sh", "-c", "echo through-the-link > /data/written"});
  std::filesystem::create_directories(m_dir.path() + "/volume");
  std::filesystem::create_directory_symlink(m_dir.path() + "/volume", m_dir.path() + "/link");
  std::ifstream in(m_bundle + "/config.json");
  auto config = nlohmann::json::parse(in);
  config["mounts"].push_back({{"destination", "/data"},
                              {"type", "bind"},
                              {"source", m_dir.path() + "/link"},
                              {"options", {"rbind"}}});
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "linked"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::string written;
  std::getline(std::ifstream(m_dir.path() + "/volume/written"), written);
  EXPECT_EQ(written, "through-the-link");
  expect_nothing_left("linked");
}

// A volume as vessel wrote it before volumes kept the guest's owners (QEMU's mapped-xattr model):
// every file root's, mode 0600, its owner, mode and type in user.virtfs.* attributes. A container
// given it says so in one line; `vessel migrate-volume` makes the files what the attributes say,
// but no setuid file and no device node.
TEST_F(RuntimeTest, AVolumeAnOlderVesselWroteIsNamedAndMigratedWithOneCommand) {
  const std::string volume = m_dir.path() + "/old-volume";
  std::filesystem::create_directories(volume + "/sub");
  auto mapped = [&](const std::string& name, uint32_t mode, uint32_t uid, const std::string& text) {
    std::string path = volume + "/" + name;
    if (!S_ISDIR(mode)) std::ofstream(path) << text;
    ::chmod(path.c_str(), S_ISDIR(mode) ? 0700 : 0600);
    for (auto [key, value] :
         {std::pair{"user.virtfs.mode", mode}, std::pair{"user.virtfs.uid", uid},
          std::pair{"user.virtfs.gid", uid + 1}}) {
      unsigned char bytes[4] = {
          static_cast<unsigned char>(value), static_cast<unsigned char>(value >> 8),
          static_cast<unsigned char>(value >> 16), static_cast<unsigned char>(value >> 24)};
      if (::setxattr(path.c_str(), key, bytes, 4, 0) < 0) return errno;
    }
    return 0;
  };
  if (mapped("sub", S_IFDIR | 0750, 42, "") == ENOTSUP)
    GTEST_SKIP() << "the file system under " << m_dir.path() << " takes no user.* attributes";
  ASSERT_EQ(mapped("sub/app", S_IFREG | 04755, 1234, "app"), 0);
  ASSERT_EQ(mapped("link", S_IFLNK | 0777, 1000, "sub/app"), 0);
  ASSERT_EQ(mapped("null", S_IFCHR | 0666, 0, ""), 0);
  ASSERT_EQ(mapped("pipe", S_IFIFO | 0640, 1000, ""), 0);

  make_busybox_bundle(m_bundle,
                      {"sh", "-c", "cd /v && stat -c '%n %u %g %a %F' sub sub/app link pipe"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["mounts"].push_back(
      {{"destination", "/v"}, {"type", "bind"}, {"source", volume}, {"options", {"rbind"}}});
  std::ofstream(m_bundle + "/config.json") << config.dump();
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "old"}).exit_code, 0);
  std::string log;
  std::getline(std::ifstream(m_root + "/old/shim.log"), log, '\0');
  EXPECT_NE(log.find(volume +
                     " keeps its files' owners in user.virtfs.* attributes, as vessel "
                     "wrote volumes before: the container sees the host's owners; as root, "
                     "`vessel migrate-volume " +
                     volume + "` gives each file its own"),
            std::string::npos)
      << log;
  ASSERT_EQ(vessel_cmd({"delete", "--force", "old"}).exit_code, 0);

  auto migrated = vessel_cmd({"migrate-volume", volume});
  EXPECT_EQ(migrated.exit_code, 0) << migrated.err;
  EXPECT_EQ(migrated.out, volume +
                              ": 5 files given the owner, group and mode containers gave "
                              "them; 1 setuid or setgid bits dropped; 1 devices or sockets "
                              "left plain files\n");
  auto seen = vessel_cmd({"run", "migrated"});
  EXPECT_EQ(seen.exit_code, 0) << seen.err;
  EXPECT_EQ(seen.out,
            "sub 42 43 750 directory\nsub/app 1234 1235 755 regular file\n"
            "link 1000 1001 777 symbolic link\npipe 1000 1001 640 fifo\n");
  struct stat null {};
  ASSERT_EQ(::lstat((volume + "/null").c_str(), &null), 0);
  EXPECT_TRUE(S_ISREG(null.st_mode)) << "a device node reached the host";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(volume)) {
    char names[256];
    EXPECT_LE(::llistxattr(entry.path().c_str(), names, sizeof names), 0) << entry.path();
  }
  EXPECT_EQ(vessel_cmd({"migrate-volume", volume}).out,
            volume +
                ": 0 files given the owner, group and mode containers gave them; 0 setuid "
                "or setgid bits dropped; 0 devices or sockets left plain files\n");
  expect_nothing_left("migrated");
}

TEST_F(RuntimeTest, ExistingId) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "twice"}).exit_code, 0);
  auto result = vessel_cmd({"create", "--bundle", m_bundle, "twice"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "vessel: container \"twice\" already exists: choose another id or delete it first "
            "(vessel delete twice)\n");
  EXPECT_EQ(read_json(vessel_cmd({"state", "twice"}).out)["status"], "created")
      << "the first container is untouched";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "twice"}).exit_code, 0);
  expect_nothing_left("twice");
}

// The configuration: a missing kernel, an unknown key or a wrong type is named by file, line and
// key before anything starts; `vessel env` shows each value with where it came from.
TEST_F(RuntimeTest, ConfigurationErrorsNameFileLineAndKeyAndEnvShowsOrigins) {
  make_busybox_bundle(m_bundle, {"true"});
  std::string config = m_dir.path() + "/configuration.toml";
  auto create_with = [&](const std::string& text) {
    std::ofstream(config) << text;
    return vessel_cmd({"create", "--bundle", m_bundle, "configured"},
                      {.env = {{"VESSEL_CONFIG", config}}});
  };
  auto missing = create_with("[hypervisor.qemu]\nkernel = \"/nonexistent/vmlinux\"\n");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "vessel: " + config +
                             ":2: hypervisor.qemu.kernel: /nonexistent/vmlinux does not exist: fix "
                             "the path, or remove the key to use vessel's own\n");
  expect_nothing_left("configured");
  auto unknown = create_with("[hypervisor.qemu]\ndefault_memory = 512\nmemory_slots = 4\n");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(unknown.err.starts_with("vessel: " + config +
                                      ":3: hypervisor.qemu.memory_slots: unknown key; "))
      << unknown.err;
  auto wrong = create_with("[runtime]\nenable_debug = \"yes\"\n");
  EXPECT_EQ(wrong.err, "vessel: " + config +
                           ":2: runtime.enable_debug: must be true or false, not a string\n");
  expect_nothing_left("configured");

  std::ofstream(config) << "# mine\n[hypervisor.qemu]\ndefault_memory = 384\n";
  auto env = run({vessel(), "env"}, {.env = {{"VESSEL_CONFIG", config}}});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  EXPECT_NE(env.out.find("#   " + config + " (present, used)"), std::string::npos) << env.out;
  EXPECT_NE(env.out.find("default_memory     = 384"), std::string::npos) << env.out;
  EXPECT_NE(env.out.find("# " + config + ":3\n"), std::string::npos) << env.out;
  EXPECT_NE(env.out.find("default_vcpus      = 1                                        # default"),
            std::string::npos)
      << env.out;
}

TEST_F(RuntimeTest, AgentFromAnotherBuildIsNamedWithBothVersions) {
  make_busybox_bundle(m_bundle, {"true"});
  std::string config = m_dir.path() + "/configuration.toml";
  std::ofstream(config) << "[hypervisor.qemu]\ninitrd = \"" << build_dir()
                        << "/tests/initrd-mismatch.img\"\n";
  auto version = run({vessel(), "--version"}).out;
  std::string runtime_version = version.substr(15, version.find('\n') - 15);
  auto result = vessel_cmd({"create", "--bundle", m_bundle, "mismatch"},
                           {.env = {{"VESSEL_CONFIG", config}}});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(
      result.err,
      "vessel: the guest image's agent is version 0.0.0-mismatch but this runtime is version " +
          runtime_version +
          ": rebuild the guest image with the runtime (make guest, or make install)\n");
  expect_nothing_left("mismatch");
}

TEST_F(RuntimeTest, ProgramNotFoundIsReportedAtCreateLikeRunc) {
  make_busybox_bundle(m_bundle, {"no-such-program"});
  auto result = vessel_cmd({"create", "--bundle", m_bundle, "notfound"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "vessel: exec: \"no-such-program\": executable file not found in $PATH\n");
  expect_nothing_left("notfound");
}

TEST_F(RuntimeTest, ErrorsGoToTheLogFileAsOneJsonObject) {
  std::string log = m_dir.path() + "/oci-log";
  make_busybox_bundle(m_bundle, {"true"});
  std::filesystem::remove_all(m_bundle + "/rootfs");
  auto result = run({vessel(), "--root", root_path(), "--log-format=json", "--log", log, "create",
                     "--bundle", m_bundle, "x"});
  EXPECT_EQ(result.exit_code, 1);
  std::ifstream file(log);
  std::string text((std::istreambuf_iterator<char>(file)), {});
  auto entry = nlohmann::json::parse(text);  // Podman unmarshals the whole file
  EXPECT_EQ(entry["level"], "error");
  EXPECT_EQ(entry["msg"], "the container's root filesystem " + m_bundle +
                              "/rootfs does not exist: check root.path in " + m_bundle +
                              "/config.json");
}

// linux.uidMappings/gidMappings become a user namespace in the guest: ids on the 9p root are the
// host's, the container sees them through the mapping, and what it writes has the mapped owner
// on the host (as with runc). Also linux.devices, rootfsPropagation, oomScoreAdj and swap.
TEST_F(RuntimeTest, MappingsDevicesPropagationOomScoreAdjAndSwapReachTheGuest) {
  make_busybox_bundle(m_bundle,
                      {"sh", "-c",
                       "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; "
                       "touch /tmp/mine; stat -c %u:%g /tmp/mine; cat /proc/self/oom_score_adj; "
                       "stat -c '%F %t:%T %a %u' /dev/fuse; stat -c %F /dev/pipe; "
                       "grep -c ' / / .*shared:' /proc/self/mountinfo; "
                       "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["linux"]["namespaces"].push_back({{"type", "user"}});
  config["linux"]["namespaces"].push_back({{"type", "cgroup"}});
  config["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  config["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}};
  config["linux"]["devices"] = {
      {{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"fileMode", 0640}},
      {{"path", "/dev/pipe"}, {"type", "p"}}};
  config["linux"]["rootfsPropagation"] = "shared";
  config["linux"]["resources"] = {{"memory", {{"limit", 64 << 20}, {"swap", 96 << 20}}}};
  config["process"]["oomScoreAdj"] = 432;
  // The cgroup mount shows the container's own limits.
  config["mounts"].push_back({{"destination", "/sys/fs/cgroup"},
                              {"type", "cgroup"},
                              {"source", "cgroup"},
                              {"options", {"nosuid", "noexec", "nodev"}}});
  std::filesystem::permissions(m_bundle + "/rootfs/tmp", std::filesystem::perms::all);
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "mapped"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "         0     100000      65536\n         0     200000      65536\n0\n0\n0:0\n432\n"
            "character special file a:e5 640 0\nfifo\n1\n67108864\n33554432\n")
      << result.err;
  struct stat st {};
  ASSERT_EQ(::stat((m_bundle + "/rootfs/tmp/mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u) << "container root is host uid 100000 through the mapping";
  EXPECT_EQ(st.st_gid, 200000u);
  expect_nothing_left("mapped");
}

// A namespace path must be a namespace of its type (the spec's error); only the network
// namespace can be joined, and the refusal of any other says why.
TEST_F(RuntimeTest, NamespacePathsOfTheWrongTypeOrOutsideTheVmAreRefused) {
  make_busybox_bundle(m_bundle, {"true"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  auto with_namespace = [&](const std::string& type, const std::string& path) {
    auto changed = config;
    for (auto& ns : changed["linux"]["namespaces"])
      if (ns["type"] == type) ns["path"] = path;
    std::ofstream(m_bundle + "/config.json") << changed.dump();
    return vessel_cmd({"create", "--bundle", m_bundle, "nspath"});
  };
  auto wrong = with_namespace("ipc", "/proc/self/ns/net");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(wrong.err,
            "vessel: linux.namespaces: /proc/self/ns/net is not a namespace of type ipc\n");
  expect_nothing_left("nspath");
  auto missing = with_namespace("network", "/nonexistent/ns");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(missing.err.starts_with(
      "vessel: linux.namespaces: the network namespace /nonexistent/ns cannot be opened"))
      << missing.err;
  auto outside = with_namespace("uts", "/proc/self/ns/uts");
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_EQ(outside.err,
            "vessel: linux.namespaces: a container in a VM cannot join the uts namespace "
            "/proc/self/ns/uts: it runs on its own kernel; give it a uts namespace of its own, or "
            "run it with runc\n");
  expect_nothing_left("nspath");
}

// `vessel ps` lists the processes in the container's VM, numbered as its pid namespace sees them.
TEST_F(RuntimeTest, PsListsTheContainersProcessesInTheGuest) {
  make_busybox_bundle(m_bundle,
                      {"sh", "-c", "sleep 1001 & echo ready > /tmp/ready; exec sleep 1002"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "listed"}).exit_code, 0);
  auto not_running = vessel_cmd({"ps", "listed"});
  EXPECT_EQ(not_running.err,
            "vessel: cannot list the processes of container \"listed\": it is created\n");
  ASSERT_EQ(vessel_cmd({"start", "listed"}).exit_code, 0);
  for (int i = 0; i < 100 && !std::filesystem::exists(m_bundle + "/rootfs/tmp/ready"); ++i)
    ::usleep(100000);
  ::usleep(200000);
  auto table = vessel_cmd({"ps", "listed"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out,
            "UID      PID      PPID     CMD\n"
            "0        1        0        sleep 1002\n"
            "0        2        1        sleep 1001\n");
  auto json = vessel_cmd({"ps", "--format", "json", "listed"});
  EXPECT_EQ(json.out, "[1,2]\n");
  auto options = vessel_cmd({"ps", "listed", "-ef"});
  EXPECT_EQ(options.exit_code, 1);
  EXPECT_EQ(options.err,
            "vessel: ps options are not supported: the container's processes run in its VM, where "
            "the host's ps cannot see them; use `podman exec listed ps ...` instead\n");
  ASSERT_EQ(vessel_cmd({"delete", "--force", "listed"}).exit_code, 0);
  expect_nothing_left("listed");
}

// The init is PID 1 of its namespace: a signal it has no handler for is dropped. Under emulation
// a shell reaches its `trap` much later than natively, so a TERM sent right after `start` (as
// `podman stop` right after `run`, or runtime-tools' killsig) would be lost; the agent holds it
// until the handler exists (at most 3 s after start). A program that never asks for the signal
// still does not get it, as under runc.
TEST_F(RuntimeTest, ASignalRightAfterStartReachesTheTrapTheProgramSetsUp) {
  make_busybox_bundle(m_bundle,
                      {"sh", "-c", "trap 'touch /trapped; exit 4' TERM; sleep 10 & wait $!"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "early-term"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "early-term"}).exit_code, 0);
  auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(vessel_cmd({"kill", "early-term", "TERM"}).exit_code, 0);
  while (read_json(vessel_cmd({"state", "early-term"}).out)["status"] != "stopped" &&
         std::chrono::steady_clock::now() - sent < std::chrono::seconds(8))
    ::usleep(100000);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(5));
  EXPECT_TRUE(std::filesystem::exists(m_bundle + "/rootfs/trapped"));
  ASSERT_EQ(vessel_cmd({"delete", "--force", "early-term"}).exit_code, 0);

  const std::string sleeper = m_dir.path() + "/sleeper";
  make_busybox_bundle(sleeper, {"sleep", "1000"});
  ASSERT_EQ(vessel_cmd({"create", "--bundle", sleeper, "no-handler"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "no-handler"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"kill", "no-handler", "TERM"}).exit_code, 0);
  ::sleep(2);
  EXPECT_EQ(read_json(vessel_cmd({"state", "no-handler"}).out)["status"], "running")
      << "PID 1 without a handler ignores TERM, as under runc";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "no-handler"}).exit_code, 0);
  expect_nothing_left("no-handler");
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

// Podman's --runtime may name a copy of vessel anywhere (its system tests copy the binary): the
// copy still finds vessel-shim and the guest image of the installation it came from.
TEST_F(RuntimeTest, ACopyOfVesselElsewhereFindsItsShimAndGuest) {
  make_busybox_bundle(m_bundle, {"sh", "-c", "echo from-the-copy; exit 6"});
  std::string copy = m_dir.path() + "/elsewhere/vessel";
  std::filesystem::create_directories(m_dir.path() + "/elsewhere");
  std::filesystem::copy_file(vessel(), copy);
  auto result = run({copy, "--root", m_root, "run", "--bundle", m_bundle, "copied"});
  EXPECT_EQ(result.exit_code, 6) << result.err;
  EXPECT_EQ(result.out, "from-the-copy\n");
  expect_nothing_left("copied");
}

// linux.cgroupsPath, absolute or relative to the caller's own cgroup (as runc reads it): the shim
// and QEMU are in it, with the spec's CPU limits; delete removes it.
TEST_F(RuntimeTest, HostCgroupPathsAbsoluteAndRelativeCarryTheCpuLimits) {
  if (!std::filesystem::exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"))
    GTEST_SKIP() << "this test reads cgroup v1's cpu controller, which this host does not mount";
  std::string own = sh("sed -n 's/^[0-9]*:cpu:\\(.*\\)$/\\1/p' /proc/self/cgroup").out;
  own = own.substr(0, own.find('\n'));
  if (own == "/") own = "";
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["linux"]["resources"] = {{"cpu", {{"quota", 30000}, {"period", 100000}, {"shares", 300}}}};
  for (const std::string path : {"/vessel-test-absolute", "vessel-test-relative"}) {
    config["linux"]["cgroupsPath"] = path;
    std::ofstream(m_bundle + "/config.json") << config.dump();
    ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "cg"}).exit_code, 0) << path;
    std::string dir = "/sys/fs/cgroup/cpu" + (path[0] == '/' ? path : own + "/" + path);
    std::string quota, shares;
    std::ifstream(dir + "/cpu.cfs_quota_us") >> quota;
    std::ifstream(dir + "/cpu.shares") >> shares;
    EXPECT_EQ(quota, "30000") << dir;
    EXPECT_EQ(shares, "300") << dir;
    std::string pid = read_json(vessel_cmd({"state", "cg"}).out)["pid"].dump();
    std::string procs = sh("cat " + dir + "/cgroup.procs").out;
    EXPECT_NE(procs.find(pid + "\n"), std::string::npos) << "the shim is in " << dir;
    ASSERT_EQ(vessel_cmd({"delete", "--force", "cg"}).exit_code, 0);
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
    expect_nothing_left("cg");
  }
}

// A host whose kernel has no KVM at all (no device, no module: a tree of the test's own), as a
// user meets it: the container runs under TCG, and `vessel run` says why in one line.
TEST_F(RuntimeTest, ARunOnAHostWithoutKvmSaysWhyInOneLine) {
  make_busybox_bundle(m_bundle, {"sh", "-c", "echo ran; exit 2"});
  std::filesystem::create_directories(m_dir.path() + "/module");
  auto result =
      vessel_cmd({"run", "no-kvm"}, {.env = {{"VESSEL_KVM_DEVICE", m_dir.path() + "/kvm"},
                                             {"VESSEL_SYS_MODULE", m_dir.path() + "/module"}}});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_EQ(result.out, "ran\n");
  EXPECT_EQ(result.err, "vessel: warning: KVM cannot be used (" + m_dir.path() +
                            "/kvm does not exist: this host's kernel has no KVM): running the VM "
                            "under TCG emulation, which is much slower\n");
  expect_nothing_left("no-kvm");
}

// On this host (and CI's): KVM cannot run vessel's guest, TCG is used and its cost measured; the
// verdict and the exit code agree, in text and in JSON.
TEST_F(RuntimeTest, CheckOnThisHostSaysTcgAndItsExitCodeMatches) {
  auto text = run({vessel(), "check"});
  bool ok_verdict = text.out.find("\nvessel can run containers here") != std::string::npos;
  EXPECT_EQ(text.exit_code, ok_verdict ? 0 : 1) << text.out;
  EXPECT_EQ(text.out.find("✘ ") == std::string::npos, ok_verdict) << text.out;
  if (std::filesystem::exists("/sys/module/kvm_pvm") || !std::filesystem::exists("/dev/kvm")) {
    size_t at = text.out.find("! KVM: ");
    ASSERT_NE(at, std::string::npos) << text.out;
    std::string line = text.out.substr(at, text.out.find('\n', at) - at);
    EXPECT_NE(line.find(": VMs run under TCG emulation; a boot takes "), std::string::npos) << line;
  }
  auto json = run({vessel(), "check", "--format", "json"});
  auto parsed = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << json.out;
  EXPECT_EQ(parsed["ok"], ok_verdict);
  EXPECT_EQ(json.exit_code, text.exit_code);
  bool saw_kvm = false;
  for (const auto& check : parsed["checks"]) saw_kvm |= check["check"] == "KVM";
  EXPECT_TRUE(saw_kvm) << json.out;
}

// `vessel --help`, `vessel COMMAND --help`, and `man vessel` after `make install PREFIX=…`.
// `setup --containerd` on a file of the test's own: what it prints and keeps, and each refusal
// in one sentence with the file left as it was.
TEST_F(RuntimeTest, SetupContainerdWritesTheHandlerOrSaysWhyNot) {
  std::filesystem::create_directories(m_bundle);
  const std::string config = m_dir.path() + "/config.toml";
  std::ofstream(config) << "version = 2\nroot = \"/data/containerd\"\n";
  auto done = vessel_cmd({"setup", "--containerd", "--default", "--config", config});
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(done.out, "registered " + vessel() +
                          " as containerd's CRI runtime handler \"vessel\" in " + config +
                          " (the previous file is kept as " + config +
                          ".before-vessel)\n  the default runtime was \"runc\": it is \"vessel\"\n"
                          "now: systemctl restart containerd; a pod runs in a VM with a "
                          "RuntimeClass whose handler is vessel (docs/kubernetes.md)\n");
  EXPECT_EQ(sh("cat " + config + ".before-vessel").out,
            "version = 2\nroot = \"/data/containerd\"\n");
  EXPECT_NE(sh("cat " + config).out.find("BinaryName = '" + vessel() + "'"), std::string::npos)
      << sh("cat " + config).out;

  std::ofstream(config) << "[plugins.cri]\n";
  auto old = vessel_cmd({"setup", "--containerd", "--config", config});
  EXPECT_EQ(old.exit_code, 1);
  EXPECT_EQ(old.err, "vessel: " + config +
                         " is containerd's configuration version 1 (no \"version = 2\"), whose "
                         "keys vessel does not write: convert it (containerd config default "
                         "prints version 2), then run vessel setup --containerd again\n");
  EXPECT_EQ(sh("cat " + config).out, "[plugins.cri]\n");
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"setup"}, {"setup", "--user", "--containerd"}}) {
    auto refused = vessel_cmd(args);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_EQ(refused.err,
              "vessel: vessel setup: give --user to register vessel in your own containers.conf, "
              "or --containerd (as root) to register it as containerd's CRI runtime handler\n");
  }
  EXPECT_EQ(vessel_cmd({"setup", "--user", "--config", config}).err,
            "vessel: vessel setup: --config names containerd's configuration: give it with "
            "--containerd\n");
}

TEST_F(RuntimeTest, HelpAndTheManPageAfterInstall) {
  auto help = run({vessel(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("  vessel check [--format text|json]"), std::string::npos) << help.out;
  auto one = run({vessel(), "create", "--help"});
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_EQ(one.out,
            "usage: vessel [global flags] create [--bundle DIR] [--pid-file FILE] "
            "[--console-socket SOCKET] ID\nsee vessel --help and man vessel\n");
  // As the README says it: make install PREFIX=… (the build is up to date: nothing is rebuilt).
  auto installed = run({"make", "-C", source_dir(), "install", "PREFIX=" + m_dir.path() + "/prefix",
                        "BUILD=" + build_dir()});
  ASSERT_EQ(installed.exit_code, 0) << installed.err;
  auto man = sh("MANPATH=" + m_dir.path() + "/prefix/share/man MANWIDTH=100 man -P cat vessel");
  EXPECT_EQ(man.exit_code, 0) << man.err;
  EXPECT_NE(man.out.find("vessel - an OCI runtime that runs each container in its own virtual "
                         "machine"),
            std::string::npos)
      << man.out;
  EXPECT_NE(man.out.find("check [--format text|json]"), std::string::npos);
}

// The container's pid on the host (the shim) is in a cgroup namespace of its own when the spec
// asks for one, as runc's container process is.
TEST_F(RuntimeTest, TheContainersHostPidHasTheCgroupNamespaceTheSpecAsksFor) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  auto& namespaces = config["linux"]["namespaces"];
  bool asked = false;
  for (const auto& ns : namespaces) asked |= ns["type"] == "cgroup";
  if (!asked) namespaces.push_back({{"type", "cgroup"}});
  std::ofstream(m_bundle + "/config.json") << config.dump();
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "cgns"}).exit_code, 0);
  std::string pid = read_json(vessel_cmd({"state", "cgns"}).out)["pid"].dump();
  auto ns = [](const std::string& who) {
    return std::filesystem::read_symlink("/proc/" + who + "/ns/cgroup").string();
  };
  EXPECT_NE(ns(pid), ns("self"));
  ASSERT_EQ(vessel_cmd({"delete", "--force", "cgns"}).exit_code, 0);
  expect_nothing_left("cgns");
}

// With enable_debug the shim's log tells the container's story, with times: QEMU's whole
// command line, each message from the agent, each request from a client.
TEST_F(RuntimeTest, EnableDebugMakesTheShimLogTellTheStory) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  std::string config = m_dir.path() + "/debug.toml";
  std::ofstream(config) << "[runtime]\nenable_debug = true\n";
  ASSERT_EQ(
      vessel_cmd({"create", "--bundle", m_bundle, "told"}, {.env = {{"VESSEL_CONFIG", config}}})
          .exit_code,
      0);
  ASSERT_EQ(vessel_cmd({"start", "told"}).exit_code, 0);
  std::string log;
  std::getline(std::ifstream(m_root + "/told/shim.log"), log, '\0');
  for (const char* line :
       {" debug vessel-shim: QEMU: /usr/bin/qemu-system-x86_64 -name vessel-told -machine ",
        " debug vessel-shim: agent: hello\n", " debug vessel-shim: agent: created\n",
        " debug vessel-shim: client: start\n", " debug vessel-shim: agent: started\n"})
    EXPECT_NE(log.find(line), std::string::npos) << line << "\n" << log;
  ASSERT_EQ(vessel_cmd({"delete", "--force", "told"}).exit_code, 0);
  expect_nothing_left("told");
}

}  // namespace vessel::test

namespace vessel::test {

// The pod of issue 9 from plain bundles, as containerd's CRI plugin writes them: a sandbox and
// two members naming it (io.kubernetes.cri.container-type / sandbox-id), the members' network,
// ipc and uts namespaces given as the sandbox's paths, driven with vessel create/start/kill/delete.
TEST_F(RuntimeTest, CriAnnotatedBundlesMakeOnePodVm) {
  std::filesystem::create_directories(m_bundle);  // where the commands run
  auto bundle = [&](const std::string& name, const std::vector<std::string>& args,
                    const nlohmann::json& annotations, pid_t sandbox) {
    std::string dir = m_dir.path() + "/" + name;
    make_busybox_bundle(dir, args);
    std::ifstream in(dir + "/config.json");
    auto config = nlohmann::json::parse(in);
    config["annotations"] = annotations;
    if (sandbox > 0) {
      config.erase("hostname");
      std::string ns = "/proc/" + std::to_string(sandbox) + "/ns/";
      config["linux"]["namespaces"] = {{{"type", "pid"}},
                                       {{"type", "mount"}},
                                       {{"type", "network"}, {"path", ns + "net"}},
                                       {{"type", "ipc"}, {"path", ns + "ipc"}},
                                       {{"type", "uts"}, {"path", ns + "uts"}}};
    } else {
      config["hostname"] = "cri-pod";
    }
    std::ofstream(dir + "/config.json") << config.dump();
    return dir;
  };
  auto member_of = [](const std::string& sandbox) {
    return nlohmann::json{{"io.kubernetes.cri.container-type", "container"},
                          {"io.kubernetes.cri.sandbox-id", sandbox}};
  };
  std::string sandbox_dir = bundle(
      "sandbox", {"sleep", "1000"},
      {{"io.kubernetes.cri.container-type", "sandbox"}, {"io.kubernetes.cri.sandbox-id", "cri-sb"}},
      0);
  ASSERT_EQ(vessel_cmd({"create", "--bundle", sandbox_dir, "cri-sb"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "cri-sb"}).exit_code, 0);
  pid_t sandbox = read_json(vessel_cmd({"state", "cri-sb"}).out)["pid"];

  std::string a_dir =
      bundle("a", {"sh", "-c", "echo served-by-a > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"},
             member_of("cri-sb"), sandbox);
  auto created = vessel_cmd({"create", "--bundle", a_dir, "cri-a"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(read_json(vessel_cmd({"state", "cri-a"}).out)["status"], "created");
  ASSERT_EQ(vessel_cmd({"start", "cri-a"}).exit_code, 0);
  EXPECT_EQ(read_json(vessel_cmd({"state", "cri-a"}).out)["status"], "running");

  // B reports into its own root filesystem, which the host reads back.
  std::string b_dir = bundle(
      "b",
      {"sh", "-c",
       "for i in $(seq 50); do wget -qO /tmp/page http://127.0.0.1:8080/index.html && break; "
       "sleep 0.2; done; { cat /tmp/page; hostname; cat /proc/1/comm; "
       "cat /proc/sys/kernel/random/boot_id; ls /tmp; } > /tmp/report; exit 3"},
      member_of("cri-sb"), sandbox);
  ASSERT_EQ(vessel_cmd({"create", "--bundle", b_dir, "cri-b"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "cri-b"}).exit_code, 0);
  auto status_of_b = [&] { return read_json(vessel_cmd({"state", "cri-b"}).out)["status"]; };
  for (int i = 0; i < 300 && status_of_b() != "stopped"; ++i) ::usleep(100000);
  EXPECT_EQ(status_of_b(), "stopped");
  std::ifstream report_file(b_dir + "/rootfs/tmp/report");
  std::stringstream report;
  report << report_file.rdbuf();
  auto boot_a = vessel_cmd({"exec", "cri-a", "cat", "/proc/sys/kernel/random/boot_id"}).out;
  EXPECT_EQ(report.str(), "served-by-a\ncri-pod\nsh\n" + boot_a + "page\nreport\n")
      << "B reaches A on 127.0.0.1, has the pod's hostname, its own pid namespace and root, "
         "and runs on the same guest boot";
  wait_for_template_builders();
  EXPECT_EQ(processes_matching("qemu-system").size(), 1u);

  // A member goes; the pod's VM stays for the others.
  ASSERT_EQ(vessel_cmd({"delete", "cri-b"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"kill", "cri-a", "KILL"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "cri-a"}).exit_code, 0);
  EXPECT_EQ(read_json(vessel_cmd({"state", "cri-sb"}).out)["status"], "running");
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-a"));

  // A member must name its own pod's namespaces, and a pod that exists.
  std::string stray = bundle("stray", {"true"}, member_of("cri-sb"), sandbox);
  {
    std::ifstream in(stray + "/config.json");
    auto config = nlohmann::json::parse(in);
    config["linux"]["namespaces"][3]["path"] = "/proc/self/ns/ipc";
    std::ofstream(stray + "/config.json") << config.dump();
  }
  auto stray_result = vessel_cmd({"create", "--bundle", stray, "cri-stray"});
  EXPECT_EQ(stray_result.err,
            "vessel: linux.namespaces: /proc/self/ns/ipc is not the ipc namespace of the pod's "
            "sandbox cri-sb: a pod member can only share its own pod's\n");
  std::string orphan = bundle("orphan", {"true"}, member_of("no-such-sandbox"), sandbox);
  auto orphan_result = vessel_cmd({"create", "--bundle", orphan, "cri-orphan"});
  EXPECT_NE(orphan_result.err.find("the pod's sandbox no-such-sandbox is not a vessel container"),
            std::string::npos)
      << orphan_result.err;
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-stray"));
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-orphan"));

  // The guest can write in the pod shares' roots: a name it made ahead of a member (here made
  // from the host in QEMU's namespace, as the guest would through 9p) must not steer the
  // member's mount elsewhere in QEMU's jail.
  std::string qemu = run({"pgrep", "-f", "qemu-system.*vessel-cri-sb "}).out;
  std::string in_qemu = "nsenter -t " + qemu.substr(0, qemu.find('\n')) + " -m ";
  EXPECT_EQ(sh(in_qemu + "ln -s /usr /vessel/pod/pod-roots/cri-steered").exit_code, 0);
  std::string steered = bundle("steered", {"true"}, member_of("cri-sb"), sandbox);
  auto steered_result = vessel_cmd({"create", "--bundle", steered, "cri-steered"});
  EXPECT_EQ(steered_result.exit_code, 1);
  EXPECT_NE(steered_result.err.find("opening the mount point cri-steered"), std::string::npos)
      << steered_result.err;
  EXPECT_EQ(sh(in_qemu + "test -e /usr/bin/qemu-system-x86_64").exit_code, 0)
      << "the member's root was mounted over the jail's /usr";

  // The sandbox's end is the VM's: a member still running stops with it, and goes cleanly.
  std::string c_dir = bundle("c", {"sleep", "1000"}, member_of("cri-sb"), sandbox);
  ASSERT_EQ(vessel_cmd({"create", "--bundle", c_dir, "cri-c"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "cri-c"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "cri-sb"}).exit_code, 0);
  auto status_of_c = [&] { return read_json(vessel_cmd({"state", "cri-c"}).out)["status"]; };
  for (int i = 0; i < 100 && status_of_c() != "stopped"; ++i) ::usleep(100000);
  EXPECT_EQ(status_of_c(), "stopped");
  EXPECT_EQ(vessel_cmd({"delete", "cri-c"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-c"));
  expect_nothing_left("cri-sb");
}

}  // namespace vessel::test

namespace vessel::test {

TEST_F(TemplateTest, ContainersRestoredFromOneTemplateDrawTheirOwnRandomBytesAndTheHostsTime) {
  ASSERT_EQ(create("booted").exit_code, 0);
  EXPECT_EQ(shim_log("booted").find("from the template"), std::string::npos) << "none yet";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "booted"}).exit_code, 0);
  ASSERT_NE(wait_for_template(), "") << "no template was made in the background";

  std::map<std::string, std::string> random, boot_id;
  for (std::string id : {"clone-a", "clone-b"}) {
    auto created = create(id);
    ASSERT_EQ(created.exit_code, 0) << created.err;
    ASSERT_EQ(vessel_cmd({"start", id}).exit_code, 0);
    EXPECT_NE(shim_log(id).find("QEMU started from the template " + saved()[0]), std::string::npos)
        << shim_log(id);
    auto drawn = vessel_cmd({"exec", id, "sh", "-c",
                             "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; "
                             "date +%s; cat /proc/sys/kernel/random/boot_id; "
                             "cat /sys/class/net/eth0/address"});
    ASSERT_EQ(drawn.exit_code, 0) << drawn.err;
    std::istringstream lines(drawn.out);
    std::string bytes, time, boot, mac;
    std::getline(lines, bytes);
    std::getline(lines, time);
    std::getline(lines, boot);
    std::getline(lines, mac);
    EXPECT_EQ(bytes.size(), 64u) << drawn.out;
    random[id] = bytes;
    boot_id[id] = boot;
    // The guest's clock is the host's, not the template's.
    EXPECT_NEAR(std::stoll(time), static_cast<long long>(::time(nullptr)), 3) << drawn.out;
    // Its card has the MAC of the interface it stands in for, not the template's.
    EXPECT_EQ(mac + "\n", m_netns[id]->mac());
  }
  EXPECT_NE(random["clone-a"], random["clone-b"]) << "two clones drew the same random bytes";
  EXPECT_NE(boot_id["clone-a"], boot_id["clone-b"]);
  for (std::string id : {"clone-a", "clone-b"}) {
    ASSERT_EQ(vessel_cmd({"delete", "--force", id}).exit_code, 0);
    expect_nothing_left(id);
  }
}

TEST_F(TemplateTest, ATemplateThatIsNotTheUsersOwnIsNeverLoaded) {
  // A template is guest memory and device state that QEMU loads unchecked: a file another user
  // could have written or swapped is refused with one line, and the container boots.
  ASSERT_EQ(create("first").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "first"}).exit_code, 0);
  const std::string saved_file = wait_for_template();
  ASSERT_NE(saved_file, "");
  auto refused = [&](const std::string& id, const std::string& why) {
    auto created = create(id);
    ASSERT_EQ(created.exit_code, 0) << created.err;
    std::string log = shim_log(id);
    EXPECT_EQ(count(log, why + ": not trusted, booting instead"), 1u) << log;
    EXPECT_EQ(count(log, " warning "), 1u + count(log, "running the VM under TCG emulation"))
        << log;
    EXPECT_EQ(log.find("from the template"), std::string::npos) << log;
    EXPECT_EQ(vessel_cmd({"start", id}).exit_code, 0);
    EXPECT_EQ(vessel_cmd({"exec", id, "echo", "alive"}).out, "alive\n");
    ASSERT_EQ(vessel_cmd({"delete", "--force", id}).exit_code, 0);
    expect_nothing_left(id);
    wait_for_template_builders();  // the builder each create starts makes a trusted one anew
  };
  const std::string user = std::to_string(::geteuid());

  ASSERT_EQ(::chown(saved_file.c_str(), 4242, 4242), 0);  // planted by another user
  refused("planted", "the template " + saved_file + " is not a regular file of " + user +
                         " with one link and mode 0600 (owner 4242, 1 links, mode 0600)");

  const std::string held = m_dir.path() + "/held.vm";  // a name someone else may write through
  ASSERT_EQ(::link(saved_file.c_str(), held.c_str()), 0);
  refused("linked", "the template " + saved_file + " is not a regular file of " + user +
                        " with one link and mode 0600 (owner " + user + ", 2 links, mode 0600)");
  ::unlink(held.c_str());

  ASSERT_EQ(::chmod(m_templates.c_str(), 0770), 0);  // a group may write in the directory
  refused("shared", "the template directory " + m_templates + " has owner " + user +
                        " and mode 0770, not " + user + " and 0700");

  const std::string real = m_templates + ".real";  // the directory a link to another
  ASSERT_EQ(::rename(m_templates.c_str(), real.c_str()), 0);
  ASSERT_EQ(::symlink(real.c_str(), m_templates.c_str()), 0);
  refused("symlinked", "the template directory " + m_templates + " is a link or no directory");
  ASSERT_EQ(::unlink(m_templates.c_str()), 0);
  ASSERT_EQ(::rename(real.c_str(), m_templates.c_str()), 0);

  // The user's own again: restored.
  ASSERT_EQ(create("trusted").exit_code, 0);
  EXPECT_NE(shim_log("trusted").find("from the template"), std::string::npos)
      << shim_log("trusted");
  ASSERT_EQ(vessel_cmd({"delete", "--force", "trusted"}).exit_code, 0);
}

TEST_F(TemplateTest, ACorruptedOrStaleTemplateFallsBackToABootWithOneLogLine) {
  ASSERT_EQ(create("first").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "first"}).exit_code, 0);
  std::string saved_file = wait_for_template();
  ASSERT_NE(saved_file, "");
  auto works = [&](const std::string& id) {
    EXPECT_EQ(vessel_cmd({"start", id}).exit_code, 0);
    EXPECT_EQ(vessel_cmd({"exec", id, "echo", "alive"}).out, "alive\n");
    ASSERT_EQ(vessel_cmd({"delete", "--force", id}).exit_code, 0);
    expect_nothing_left(id);
  };

  // Cut short, as by a full disk: QEMU cannot load it.
  std::filesystem::resize_file(saved_file, std::filesystem::file_size(saved_file) / 2);
  auto created = create("truncated");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string log = shim_log("truncated");
  EXPECT_EQ(count(log, "could not be restored"), 1u) << log;
  // The template's line alone, beside TCG's on a host whose KVM cannot run the guest.
  EXPECT_EQ(count(log, " warning "), 1u + count(log, "running the VM under TCG emulation")) << log;
  works("truncated");
  EXPECT_NE(wait_for_template(), "") << "the broken template is made anew";

  // Saved for another VM (an older guest image, another QEMU): never loaded.
  std::string text;
  std::getline(std::ifstream(saved_file), text, '\0');
  std::ofstream(saved_file) << "vessel-template \"another VM\"\n"
                            << text.substr(text.find('\n') + 1);
  ASSERT_EQ(create("stale").exit_code, 0);
  log = shim_log("stale");
  EXPECT_EQ(count(log, "was saved for another VM"), 1u) << log;
  EXPECT_EQ(log.find("from the template"), std::string::npos) << log;
  works("stale");
}

}  // namespace vessel::test

namespace vessel::test {

namespace {

size_t pss_kib(const std::string& pid) {
  std::ifstream rollup("/proc/" + pid + "/smaps_rollup");
  std::string line;
  while (std::getline(rollup, line))
    if (line.starts_with("Pss:")) return std::stoul(line.substr(4));
  return 0;
}

// How many pages of QEMU's guest RAM (its anonymous mapping of `mib` MiB) are mapped at all,
// even to the kernel's shared zero page: what QEMU's restore and the guest have touched.
size_t guest_pages_present(const std::string& pid, size_t mib) {
  std::ifstream maps("/proc/" + pid + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, device, inode, path;
    fields >> range >> perms >> offset >> device >> inode >> path;
    uint64_t start = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    uint64_t end = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    if (end - start != mib << 20 || !path.empty()) continue;
    std::ifstream pagemap("/proc/" + pid + "/pagemap", std::ios::binary);
    pagemap.seekg(static_cast<std::streamoff>(start / 4096 * 8));
    std::vector<uint64_t> entries((end - start) / 4096);
    pagemap.read(reinterpret_cast<char*>(entries.data()),
                 static_cast<std::streamsize>(entries.size() * 8));
    return static_cast<size_t>(
        std::count_if(entries.begin(), entries.end(), [](uint64_t e) { return e >> 63; }));
  }
  return SIZE_MAX;
}

// A bare QEMU with the restored container's own argv and neutral backends (the console into
// /dev/null, the card on an unconnected UDP socket, the shares on an empty directory, an agent
// port nobody answers), restoring the same template without a jail or a shim: what the same
// virtual hardware costs on this host, so that vessel's cost is a ratio to it (as make bench's).
// Both are read while both run: they share QEMU's binary and libraries, half each.
class BareRestore {
 public:
  BareRestore(const std::string& qemu_pid, const std::string& template_file) {
    std::ifstream cmdline("/proc/" + qemu_pid + "/cmdline");
    std::vector<std::string> argv;
    for (std::string arg; std::getline(cmdline, arg, '\0');) argv.push_back(arg);
    int agent[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, agent) < 0) return;
    m_agent = agent[0];
    int saved = ::open(template_file.c_str(), O_RDONLY | O_CLOEXEC);
    // vessel's one-line header (the template's key) comes before QEMU's stream.
    for (char c = 0; saved >= 0 && c != '\n' && ::read(saved, &c, 1) == 1;) {
    }
    for (auto& arg : argv) {
      if (arg.starts_with("socket,id=console,")) arg = "file,id=console,path=/dev/null";
      if (arg.starts_with("socket,id=agent,")) arg = "socket,id=agent,fd=3";
      if (arg.starts_with("fd:")) arg = "fd:4";
      if (arg.starts_with("tap,id=net0,"))
        arg = "socket,id=net0,udp=127.0.0.1:9,localaddr=127.0.0.1:0";
      if (arg.starts_with("local,id=")) {
        size_t path = arg.find(",path=") + 6;
        arg.replace(path, arg.find(',', path) - path, m_empty.path());
      }
    }
    auto name = std::find(argv.begin(), argv.end(), "-name");
    if (name != argv.end() && name + 1 != argv.end()) name[1] = "bare-restore";
    m_pid = ::fork();
    if (m_pid == 0) {
      ::dup2(agent[1], 3);
      ::dup2(saved, 4);
      int null = ::open("/dev/null", O_RDWR);
      for (int fd : {0, 1, 2}) ::dup2(null, fd);
      ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);  // as vessel's jail does for QEMU
      std::vector<char*> args;
      for (auto& arg : argv) args.push_back(arg.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(agent[1]);
    if (saved >= 0) ::close(saved);
  }
  ~BareRestore() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
    if (m_agent >= 0) ::close(m_agent);
  }
  size_t pss() const { return m_pid > 0 ? pss_kib(std::to_string(m_pid)) : 0; }

 private:
  TempDir m_empty;
  pid_t m_pid = -1;
  int m_agent = -1;
};

}  // namespace

// What an idle container costs the host, QEMU and shim together, read as PSS: a bound, not a
// timing, and a ratio to a bare QEMU restoring the same template in the same test (an absolute
// figure moves with the host's kernel and QEMU's libraries). vessel held 86 MiB against the bare
// QEMU's 65.5 MiB (1.31) after templates, huge pages off, the 16 MiB TCG cache and shorter
// virtio-mmio queues (issue 10; docs/benchmarks.md has the breakdown).
TEST_F(TemplateTest, AnIdleRestoredVmStaysWithinItsMemoryBound) {
  constexpr double kBoundRatio = 1.5;
  ASSERT_EQ(create("first").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "first"}).exit_code, 0);
  std::string saved = wait_for_template();
  ASSERT_NE(saved, "");
  ASSERT_EQ(create("idle").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "idle"}).exit_code, 0);
  ASSERT_NE(shim_log("idle").find("from the template"), std::string::npos);
  std::string shim = read_json(vessel_cmd({"state", "idle"}).out)["pid"].dump();
  auto qemu = processes_matching("-name vessel-idle ");
  ASSERT_EQ(qemu.size(), 1u);
  std::string qemu_pid = qemu[0].substr(0, qemu[0].find(':'));
  BareRestore bare_qemu(qemu_pid, saved);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // past the start, idle; bare restored
  size_t total = pss_kib(shim) + pss_kib(qemu_pid);
  size_t bare = bare_qemu.pss();
  std::cout << "idle restored VM: QEMU + shim " << total << " KiB, a bare QEMU restoring the same "
            << "template " << bare << " KiB\n";
  EXPECT_GT(total, 0u);
  ASSERT_GT(bare, 0u) << "the bare QEMU did not run";
  EXPECT_LE(static_cast<double>(total), kBoundRatio * static_cast<double>(bare))
      << "QEMU " << pss_kib(qemu_pid) << " KiB, shim " << pss_kib(shim) << " KiB, bare QEMU "
      << bare << " KiB";
  // Huge pages would hold 2 MiB for each 4 KiB page the restored guest touches.
  std::ifstream smaps("/proc/" + qemu_pid + "/smaps_rollup");
  std::string text((std::istreambuf_iterator<char>(smaps)), {});
  EXPECT_NE(text.find("AnonHugePages:         0 kB"), std::string::npos) << text;
  // The template leaves out the free memory the guest's balloon hinted while it was saved, so
  // a restore never maps it (not even to the zero page, a fault for each): of 256 MiB, the
  // guest's own ~27 MiB and the free blocks too small to hint (~48 MiB in all here), where a
  // stream holding every page would map all of them.
  size_t present = guest_pages_present(qemu_pid, 256);
  ASSERT_NE(present, SIZE_MAX) << "no 256 MiB mapping of guest RAM in QEMU";
  EXPECT_LT(present, (256u << 20) / 4096 / 2) << present << " of the guest's pages are mapped";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "idle"}).exit_code, 0);
  expect_nothing_left("idle");
}

}  // namespace vessel::test

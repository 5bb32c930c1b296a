// vessel under rootless Podman, as the reference describes: an unprivileged user with subuid and
// subgid ranges and the kvm group (tests/e2e/rootless-setup.sh makes one), vessel installed with
// `make install`, registered with `vessel setup --user`, Podman's defaults (slirp4netns).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/harness.h"

namespace vessel::test {

namespace {

constexpr const char* kUser = "vessel-tester";
constexpr const char* kImage = "localhost/vessel-rootless";

std::string prefix() { return VESSEL_ROOTLESS_PREFIX; }

// A login shell as the user: no XDG_RUNTIME_DIR, so Podman uses /tmp/podman-run-UID.
CommandResult as_user(const std::string& user, const std::string& script,
                      const CommandOptions& options = {}) {
  return run({"runuser", "-l", user, "-c", "cd /tmp && " + script}, options);
}

std::string uid_of(const std::string& user) {
  auto result = run({"id", "-u", user});
  return result.out.substr(0, result.out.find('\n'));
}

// Podman warns that / is not a shared mount in this sandbox; nothing else may reach stderr.
std::string without_podman_noise(const std::string& text) {
  std::string out, line;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    line = text.substr(start, end == std::string::npos ? std::string::npos : end - start + 1);
    if (line.find("is not a shared mount") == std::string::npos) out += line;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// Imports a busybox image as `user` (a fresh user has no images and no registry is reachable).
CommandResult import_busybox_image(const std::string& user, const std::string& image) {
  return as_user(user,
                 "set -e; d=$(mktemp -d); chmod 755 $d; mkdir -p $d/bin $d/proc $d/sys $d/dev "
                 "$d/tmp $d/etc $d/www; "
                 "cp /bin/busybox $d/bin/; for a in $(/bin/busybox --list); do [ $a = busybox ] || "
                 "ln -s busybox $d/bin/$a; done; echo served-from-the-vm > $d/www/index.html; "
                 "tar -C $d -cf $d.tar .; podman import --change 'CMD [\"/bin/sh\"]' $d.tar " +
                     image + " >/dev/null; rm -rf $d $d.tar");
}

class RootlessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || ::access("/usr/bin/podman", X_OK) != 0) return;
    auto setup = as_user(kUser, prefix() + "/bin/vessel setup --user");
    ASSERT_EQ(setup.exit_code, 0) << setup.err;
    auto image = import_busybox_image(kUser, kImage);
    ASSERT_EQ(image.exit_code, 0) << image.err;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "creating the unprivileged test user needs root";
    if (::access("/usr/bin/podman", X_OK) != 0)
      GTEST_SKIP() << "podman is not installed: run scripts/install-deps.sh";
  }

  CommandResult podman(const std::string& args, const CommandOptions& options = {}) {
    auto result = as_user(kUser, "podman " + args, options);
    result.err = without_podman_noise(result.err);
    return result;
  }

  void expect_nothing_left() {
    wait_for_template_builders();
    auto processes = run({"pgrep", "-a", "-u", kUser, "-f", "qemu-system|vessel-shim"});
    EXPECT_EQ(processes.out, "") << "QEMU or a shim was left running";
    auto state = sh("ls -A /tmp/podman-run-" + uid_of(kUser) +
                    "/vessel | grep -v -e kvm-probe -e tsc-khz -e templates");
    EXPECT_EQ(state.out, "") << "a state directory was left behind";
  }
};

}  // namespace

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

TEST_F(RootlessTest, Slirp4netnsReachesTheHostLoopbackAndPublishesPorts) {
  TempDir www;
  sh("echo hello-from-the-host > " + www.path() + "/index.html; chmod -R a+rX " + www.path());
  auto server = sh("busybox httpd -p 127.0.0.1:18090 -h " + www.path());
  ASSERT_EQ(server.exit_code, 0) << server.err;
  auto fetched = podman(
      std::string("run --rm --runtime=vessel --network=slirp4netns:allow_host_loopback=true ") +
      kImage + " wget -qO- http://10.0.2.2:18090/index.html");
  sh("pkill -f 'httpd -p 127.0.0.1:18090'");
  EXPECT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_EQ(fetched.out, "hello-from-the-host\n");

  auto started = podman(std::string("run -d --runtime=vessel -p 18080:80 ") + kImage +
                        " httpd -f -p 80 -h /www");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  CommandResult page;
  for (int i = 0; i < 50 && page.out.empty(); ++i) {
    page = sh("curl -s -m 2 http://127.0.0.1:18080/index.html");
    if (page.out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(page.out, "served-from-the-vm\n");
  EXPECT_EQ(podman("rm -f -t 0 " + id).exit_code, 0);
  expect_nothing_left();
}

TEST_F(RootlessTest, NetworkNoneHasOnlyLoopbackAndHostIsRefused) {
  auto none = podman(std::string("run --rm --runtime=vessel --network=none ") + kImage +
                     " ls /sys/class/net");
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "lo\n");
  auto host = podman(std::string("run --rm --runtime=vessel --network=host ") + kImage + " true");
  EXPECT_EQ(host.exit_code, 126);
  EXPECT_NE(
      host.err.find("a container in a VM cannot share the host's network: drop --network=host"),
      std::string::npos)
      << host.err;
  expect_nothing_left();
}

TEST_F(RootlessTest, ResolvConfHostsAndHostnameAreThePodmanPreparedOnes) {
  auto result = podman(
      std::string("run --rm --runtime=vessel --hostname inside --add-host db.example:10.1.2.3 "
                  "--dns 10.9.9.9 ") +
      kImage + " sh -c 'hostname; cat /etc/hostname; echo; cat /etc/hosts /etc/resolv.conf'");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.out.starts_with("inside\ninside\n")) << result.out;
  EXPECT_NE(result.out.find("10.1.2.3\tdb.example"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("nameserver 10.9.9.9"), std::string::npos) << result.out;
}

// The reference's walkthrough, start to end, for a user who has never used vessel.
TEST_F(RootlessTest, ReferenceWalkthroughForAFreshUser) {
  const std::string user = "vessel-walk";
  auto created = sh(source_dir() + "/tests/e2e/rootless-setup.sh " + build_dir() + " " + prefix() +
                    "-walk " + user);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_NE(run({"id", "-nG", user}).out.find("kvm"), std::string::npos);
  auto setup = as_user(user, prefix() + "-walk/bin/vessel setup --user");
  EXPECT_EQ(setup.exit_code, 0) << setup.err;
  auto image = import_busybox_image(user, "localhost/walk");
  ASSERT_EQ(image.exit_code, 0) << image.err;
  auto date = as_user(user, "podman run --rm --runtime=vessel localhost/walk date");
  EXPECT_EQ(date.exit_code, 0) << date.err;
  EXPECT_NE(date.out.find("UTC"), std::string::npos) << date.out;
  // The reference's optional step: vessel as the user's default runtime; plain `podman run`.
  auto made_default = as_user(user, prefix() + "-walk/bin/vessel setup --user --default");
  EXPECT_EQ(made_default.exit_code, 0) << made_default.err;
  EXPECT_NE(made_default.out.find("now: podman run IMAGE CMD"), std::string::npos)
      << made_default.out;
  auto plain = as_user(user, "podman run --rm localhost/walk uname -r");
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_TRUE(plain.out.ends_with("-vessel\n")) << "a guest kernel, not the host's: " << plain.out;
  EXPECT_NE(plain.out, host_kernel_release() + "\n");
  sh(source_dir() + "/tests/e2e/rootless-setup.sh " + build_dir() + " " + prefix() + "-walk " +
     user + " --remove");
}

// Podman enters the mount namespace of the shim's pid: it holds the container's files only.
TEST_F(RootlessTest, PodmanCpAndTopSeeOnlyTheContainer) {
  auto started = podman(std::string("run -d --runtime=vessel ") + kImage + " sleep 1000");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  std::string probe = "/tmp/vessel-rootless-cp-" + id.substr(0, 12);
  auto in = as_user(kUser, "echo from-the-host > " + probe + ".src && podman cp " + probe +
                               ".src " + id + ":" + probe + " && rm " + probe + ".src");
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(sh("ls " + probe + " 2>/dev/null").out, "") << "podman cp wrote on the host";
  EXPECT_EQ(podman("exec " + id + " cat " + probe).out, "from-the-host\n");
  auto out = podman("cp " + id + ":/www/index.html -");
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("served-from-the-vm"), std::string::npos);
  auto top = podman("top " + id);
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_EQ(std::count(top.out.begin(), top.out.end(), '\n'), 1) << top.out;
  EXPECT_EQ(podman("rm -f -t 0 " + id).exit_code, 0);
  expect_nothing_left();
}

// QEMU in a user namespace of its own below Podman's, with its own mounts; a volume never gets
// a setuid file or a device node from the guest, and what the guest makes there is the user's.
TEST_F(RootlessTest, QemuIsConfined) {
  auto started = podman(std::string("run -d --runtime=vessel ") + kImage + " sleep 1000");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  std::string qemu =
      sh("pgrep -u " + std::string(kUser) + " -f 'qemu-system.*vessel-" + id + "'").out;
  qemu = qemu.substr(0, qemu.find('\n'));
  ASSERT_FALSE(qemu.empty());
  std::string shim = podman("inspect -f '{{.State.Pid}}' " + id).out;
  shim = shim.substr(0, shim.find('\n'));
  auto ns = [](const std::string& pid, const std::string& kind) {
    return sh("readlink /proc/" + pid + "/ns/" + kind).out;
  };
  for (const char* kind : {"user", "mnt", "pid", "net"}) {
    EXPECT_NE(ns(qemu, kind), ns("self", kind)) << kind;
    EXPECT_NE(ns(qemu, kind), ns(shim, kind)) << kind;
  }
  EXPECT_EQ(sh("grep -E '^CapEff:' /proc/" + qemu + "/status").out, "CapEff:\t000000000000001f\n");
  EXPECT_EQ(podman("rm -f -t 0 " + id).exit_code, 0);
  expect_nothing_left();
}

// What a rootless container writes in a volume belongs to whom Podman's mapping says, exactly as
// with runc: root, --user, --userns=keep-id and --uidmap. A setuid bit, which runc lets land in
// the user's directory (owned by the user or a subordinate id), is refused as under rootful
// Podman (hypervisor/qemu/setuid_guard.h); a device node cannot be made with either.
TEST_F(RootlessTest, VolumeFilesGetTheOwnersPodmansMappingGivesAsWithRunc) {
  auto owners = [&](const std::string& runtime) {
    std::string run = "podman run --rm --runtime=" + runtime + " -v $d:/data ";
    auto result = as_user(
        kUser,
        "set -e; d=$(mktemp -d); chmod 777 $d; " + run + kImage +
            " sh -c 'id -u; touch /data/root; cp /bin/busybox /data/suid; chmod 4755 /data/suid; "
            "mknod /data/null c 1 3 2>/dev/null || echo no-device; "
            "chown 4000000000 /data/root 2>/dev/null || echo no-id-outside-the-mapping'; " +
            run + "--user 1000:1000 " + kImage + " sh -c 'id -u; touch /data/user1000'; " + run +
            "--userns=keep-id " + kImage + " sh -c 'id -u; touch /data/keepid'; " + run +
            "--uidmap 0:100:2000 --gidmap 0:200:2000 " + kImage +
            " sh -c 'id -u; touch /data/uidmap'; cd $d; stat -c '%n %a %u:%g' *; cd /; rm -rf $d");
    result.err = without_podman_noise(result.err);
    return result;
  };
  auto runc = owners("runc");
  ASSERT_EQ(runc.exit_code, 0) << runc.err;
  auto vessel = owners("vessel");
  EXPECT_EQ(vessel.exit_code, 0) << vessel.err;
  std::string without_setuid = runc.out;
  size_t suid = without_setuid.find("suid 4755 ");
  ASSERT_NE(suid, std::string::npos) << runc.out;
  without_setuid.replace(suid, 10, "suid 755 ");
  EXPECT_EQ(vessel.out, without_setuid);
  // The expectation itself, spelled out: the user owns what root and keep-id write.
  std::string user = uid_of(kUser);
  EXPECT_NE(runc.out.find("keepid 644 " + user + ":"), std::string::npos) << runc.out;
  EXPECT_NE(runc.out.find("root 644 " + user + ":"), std::string::npos) << runc.out;
  EXPECT_NE(runc.out.find("no-device"), std::string::npos) << runc.out;
  EXPECT_NE(runc.out.find("no-id-outside-the-mapping"), std::string::npos) << runc.out;
  expect_nothing_left();
}

// The everyday steps with a volume, rootless (PodmanTest.VolumesGetRuncsOwnersAndModesButNeverA
// SetuidFileOrADevice is the rootful one): chown, chmod, `mkdir -p`, a `--user` writer and
// `podman cp` leave on the host what runc leaves, through Podman's mapping; a setuid bit on a
// bound file, which runc lets land, is refused.
TEST_F(RootlessTest, VolumeStepsLeaveWhatRuncLeaves) {
  auto steps = [&](const std::string& runtime) {
    auto result = as_user(
        kUser,
        "set -e; d=$(mktemp -d); chmod 755 $d; echo bound > $d.file; echo copied > $d.src; "
        "id=$(podman run -d --runtime=" +
            runtime + " -v $d:/v -v $d.file:/bound " + kImage +
            " sleep 1000); "
            "podman exec $id sh -c 'echo x > /v/g && chown 1234:1234 /v/g && chmod 640 /v/g && "
            "mkdir -p /v/a/b/c && chmod 750 /v/a/b && chown -R 42:43 /v/a && mkdir /v/open && "
            "chmod 1777 /v/open'; "
            "podman exec --user 1000:1000 $id sh -c 'echo u > /v/open/u && mkdir -p /v/open/x/y'; "
            "podman cp $d.src $id:/v/copied; "
            "podman exec $id sh -c 'chmod u+s /bound 2>/dev/null && echo bound-setuid || echo "
            "bound-refused'; "
            "podman rm -f -t 0 $id >/dev/null; cd $d; find . -printf '%p %U %G %m %y\\n' | sort; "
            "cd /; podman unshare rm -rf $d $d.file $d.src");
    result.err = without_podman_noise(result.err);
    return result;
  };
  auto runc = steps("runc");
  ASSERT_EQ(runc.exit_code, 0) << runc.err;
  auto vessel = steps("vessel");
  EXPECT_EQ(vessel.exit_code, 0) << vessel.err;
  ASSERT_TRUE(runc.out.starts_with("bound-setuid\n")) << runc.out;
  EXPECT_EQ(vessel.out, "bound-refused\n" + runc.out.substr(13));
  EXPECT_NE(runc.out.find("./open/u "), std::string::npos) << runc.out;
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

// Exactly rootless runc's five capability sets for each way a user changes them.
TEST_F(RootlessTest, CapabilitySetsAreExactlyRuncs) {
  for (const char* flags :
       {"--cap-drop=all", "--cap-drop=CHOWN", "--cap-add=SYS_ADMIN", "--privileged"}) {
    auto with = [&](const std::string& runtime) {
      return podman("run --rm --runtime=" + runtime + " " + flags + " " + kImage +
                    " grep ^Cap /proc/self/status");
    };
    auto runc = with("runc");
    auto ours = with("vessel");
    ASSERT_EQ(runc.exit_code, 0) << runc.err;
    EXPECT_EQ(std::count(ours.out.begin(), ours.out.end(), '\n'), 5) << ours.out << ours.err;
    EXPECT_EQ(ours.out, runc.out) << flags;
  }
}

// Rootless Podman bind-mounts the devices it cannot create: the guest's own device with the
// same numbers stands in for each.
TEST_F(RootlessTest, ABoundDeviceIsTheGuestsOwnDeviceWithTheSameNumbers) {
  auto result = podman(
      std::string("run --rm --runtime=vessel --device /dev/zero:/dev/vessel-zero ") + kImage +
      " sh -c 'stat -c \"%t:%T\" /dev/vessel-zero; head -c 5 /dev/vessel-zero | wc -c'");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "1:5\n5\n");
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

// Resources for an unprivileged user: the guest enforces them with its own cgroup v2, whatever
// the host's cgroups allow. (Rootless Podman on this host's cgroup v1 drops --memory and friends
// before a runtime sees them, for runc as for vessel; so the bundle is given to vessel directly,
// inside the user's Podman user namespace, as rootless Podman runs it.)
TEST_F(RootlessTest, ResourcesAreEnforcedInTheGuestForAnUnprivilegedUser) {
  std::string bundle = "/tmp/vessel-rootless-resources";
  sh("rm -rf " + bundle);
  make_busybox_bundle(bundle, {"sh", "-c",
                               "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; nproc; "
                               "x=a; while :; do x=$x$x; done"});
  auto config = nlohmann::json::parse(std::ifstream(bundle + "/config.json"));
  config["linux"]["resources"] = {{"memory", {{"limit", 48 << 20}}},
                                  {"pids", {{"limit", 40}}},
                                  {"cpu", {{"quota", 200000}, {"period", 100000}}}};
  config["mounts"].push_back({{"destination", "/sys/fs/cgroup"},
                              {"type", "cgroup"},
                              {"source", "cgroup"},
                              {"options", {"nosuid", "noexec", "nodev"}}});
  std::ofstream(bundle + "/config.json") << config.dump();
  sh("chown -R " + std::string(kUser) + " " + bundle);
  auto result = as_user(kUser, "podman unshare " + prefix() + "/bin/vessel --root /tmp/vessel-rr-" +
                                   uid_of(kUser) + " run --bundle " + bundle + " limited");
  // A string that doubles until it passes 48 MiB: killed by the guest's OOM killer. (One that
  // grows a little at a time can make the guest reclaim the program's own pages over and over
  // for minutes before the OOM killer acts, as on any host.)
  EXPECT_EQ(result.exit_code, 137) << "OOM-killed over 48 MiB: " << result.err;
  EXPECT_EQ(result.out, "50331648\n40\n2\n") << result.err;
  sh("rm -rf " + bundle);
  expect_nothing_left();
}

// `vessel check` for a user whose setup is broken the ways the reference warns about: not in the
// kvm group, /dev/kvm 0600, an unreadable guest image, vessel not registered, no subordinate ids.
// Each problem comes with its fix, and the exit code says vessel cannot run containers here.
TEST_F(RootlessTest, CheckReportsEachBrokenStepWithItsFix) {
  const std::string user = "vessel-broken";
  sh("userdel -r " + user + " 2>/dev/null; useradd -m -s /bin/sh " + user);
  sh("sed -i '/^" + user + ":/d' /etc/subuid /etc/subgid");
  const std::string dir = "/tmp/vessel-broken-image";
  sh("rm -rf " + dir + " && mkdir -p " + dir + " && cp " + prefix() + "/share/vessel/vmlinux " +
     dir + "/vmlinux && chmod 0600 " + dir + "/vmlinux && chmod 0755 " + dir);
  std::ofstream(dir + "/configuration.toml")
      << "[hypervisor.qemu]\nkernel = \"" << dir << "/vmlinux\"\n";
  sh("chmod 0644 " + dir + "/configuration.toml");
  // A KVM device node of the test's own, whatever the host has (hypervisor::KvmHost).
  const std::string kvm = dir + "/kvm";
  sh("mknod " + kvm + " c 10 232 && chown root:kvm " + kvm);
  auto check = [&] {
    return as_user(user, "VESSEL_KVM_DEVICE=" + kvm + " VESSEL_CONFIG=" + dir +
                             "/configuration.toml " + prefix() + "/bin/vessel check");
  };
  ::chmod(kvm.c_str(), 0600);
  auto locked = check();
  ::chmod(kvm.c_str(), 0660);
  auto outside = check();
  // setup does the user's part and prints what only root can do, as commands.
  auto setup = as_user(user, "VESSEL_CONFIG=" + dir + "/configuration.toml " + prefix() +
                                 "/bin/vessel setup --user");
  sh("userdel -r " + user + "; rm -rf " + dir);
  EXPECT_EQ(setup.exit_code, 0) << setup.err;
  EXPECT_NE(setup.out.find("still to do, as root:\n"), std::string::npos) << setup.out;
  EXPECT_NE(setup.out.find("  subordinate ids: " + user +
                           " has no range of 65536 ids in /etc/subuid and /etc/subgid\n    sudo "
                           "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " +
                           user + "\n"),
            std::string::npos)
      << setup.out;

  EXPECT_EQ(locked.exit_code, 1) << locked.out << locked.err;
  auto has = [](const CommandResult& result, const std::string& lines) {
    return result.out.find(lines) != std::string::npos;
  };
  EXPECT_TRUE(has(locked, "! " + kvm +
                              ": mode 0600 root:kvm: only root may use it\n    fix: sudo "
                              "groupadd -f --system kvm && sudo chown root:kvm " +
                              kvm +
                              " && sudo chmod "
                              "0660 " +
                              kvm + " (most distributions' udev rules do this)\n"))
      << locked.out;
  EXPECT_TRUE(has(outside, "! kvm group: " + user + " is not in the kvm group that owns " + kvm +
                               "\n    fix: sudo "
                               "usermod -aG kvm " +
                               user + ", then log in again\n"))
      << outside.out;
  for (const auto& result : {locked, outside}) {
    EXPECT_TRUE(has(result, "✘ guest kernel: " + dir +
                                "/vmlinux is not readable by you\n    fix: "
                                "sudo chmod a+r " +
                                dir + "/vmlinux\n"))
        << result.out;
    EXPECT_TRUE(has(result, "✘ subordinate ids: " + user +
                                " has no range of 65536 ids in /etc/subuid and /etc/subgid\n    "
                                "fix: sudo usermod --add-subuids 100000-165535 --add-subgids "
                                "100000-165535 " +
                                user + "\n"))
        << result.out;
    EXPECT_TRUE(has(result,
                    "! Podman: vessel is not registered: podman needs "
                    "--runtime=/path/to/vessel\n    fix: vessel setup --user\n"))
        << result.out;
    EXPECT_TRUE(result.out.ends_with("vessel cannot run containers here: 2 problems to fix\n"))
        << result.out;
  }
}

// A pod is one VM for an unprivileged user too (docs/pods.md): the member's files are attached
// in QEMU's mount namespace from inside the user's own user namespace.
TEST_F(RootlessTest, APodIsOneVmForAnUnprivilegedUser) {
  podman("pod rm -f -t 0 rootless-pod");
  auto created = podman("--runtime=vessel pod create --name rootless-pod");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto a =
      podman(std::string("--runtime=vessel run -d --pod rootless-pod --name rootless-pod-a ") +
             kImage + " sh -c 'echo served-by-a > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = podman(std::string("--runtime=vessel run -d --pod rootless-pod --name rootless-pod-b ") +
                  kImage + " sleep 1000");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::string page;
  for (int i = 0; i < 100 && page.empty(); ++i) {
    page = podman("exec rootless-pod-b wget -qO- http://127.0.0.1:8080/index.html").out;
    if (page.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(page, "served-by-a\n");
  EXPECT_EQ(podman("exec rootless-pod-a hostname").out, "rootless-pod\n");
  EXPECT_EQ(podman("exec rootless-pod-b hostname").out, "rootless-pod\n");
  EXPECT_EQ(podman("exec rootless-pod-b test -e /tmp/index.html").exit_code, 1);
  EXPECT_EQ(podman("exec rootless-pod-b cat /proc/sys/kernel/random/boot_id").out,
            podman("exec rootless-pod-a cat /proc/sys/kernel/random/boot_id").out);
  wait_for_template_builders();
  auto qemus = run({"pgrep", "-c", "-u", kUser, "-f", "qemu-system"});
  EXPECT_EQ(qemus.out, "1\n");

  EXPECT_EQ(podman("stop -t 1 rootless-pod-a").exit_code, 0);
  EXPECT_EQ(podman("rm rootless-pod-a").exit_code, 0);
  EXPECT_EQ(podman("exec rootless-pod-b echo still-here").out, "still-here\n");
  EXPECT_EQ(podman("pod rm -f -t 0 rootless-pod").exit_code, 0);
  expect_nothing_left();
}

}  // namespace vessel::test

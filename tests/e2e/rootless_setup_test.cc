// A user's setup: the reference's walkthrough for a fresh user (and `setup --user --default`), and
// `vessel check` and `vessel setup --user` for a user whose setup is broken.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

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

}  // namespace vessel::test

#include "hypervisor/qemu/qemu.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace vessel::hypervisor {

namespace {

VmConfig sample() {
  VmConfig config;
  config.name = "vessel-abc";
  config.hypervisor_path = "/usr/bin/qemu-system-x86_64";
  config.kernel = "/g/vmlinux";
  config.initrd = "/g/initrd.img";
  config.accel = Accel::Tcg;
  config.tsc_khz = 2100000;
  config.shares = {{"rootfs", "/var/lib/a,b", true},
                   {"volume0", "/srv/data", false, Ownership::Guarded}};
  return config;
}

std::string after(const std::vector<std::string>& argv, const std::string& flag, int nth = 0) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag && nth-- == 0) return argv[i + 1];
  return "";
}

}  // namespace

TEST(QemuArgvTest, TcgMicrovmWithTscRateSandboxAndNoDefaults) {
  auto argv = qemu_argv(sample());
  EXPECT_EQ(argv[0], "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(after(argv, "-accel"), "tcg,tb-size=16");
  EXPECT_EQ(after(argv, "-machine"), "microvm,pit=off,pic=off,isa-serial=on,rtc=on");
  EXPECT_NE(after(argv, "-append").find("tsc_early_khz=2100000 tsc=reliable"), std::string::npos);
  EXPECT_TRUE(after(argv, "-sandbox").starts_with("on,"));
  EXPECT_NE(std::find(argv.begin(), argv.end(), "-nodefaults"), argv.end());
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-cpu"), argv.end());
}

TEST(QemuArgvTest, SharesAreServedFromTheJailWithTheGuestsOwners) {
  auto argv = qemu_argv(sample());
  EXPECT_EQ(after(argv, "-fsdev"),
            "local,id=fs0,path=/vessel/share/rootfs,security_model=passthrough,readonly=on");
  EXPECT_EQ(after(argv, "-device", 4), "virtio-9p-device,fsdev=fs0,mount_tag=rootfs");
  // A volume is a host directory: what the guest makes there has the owners it sets, as under
  // runc, and never a setuid bit (setuid_guard.h): only the root filesystem's tree takes them.
  EXPECT_EQ(after(argv, "-fsdev", 1),
            "local,id=fs1,path=/vessel/share/volume0,security_model=passthrough");
  VmConfig config = sample();
  config.pod_shares = {{"pod-roots", Ownership::Host}, {"pod-volumes", Ownership::Guarded}};
  EXPECT_EQ(setuid_roots(config),
            (std::vector<std::string>{"/vessel/share/rootfs", "/vessel/pod/pod-roots"}));
  EXPECT_EQ(after(argv, "-kernel"), "/vessel/kernel");
  EXPECT_EQ(after(argv, "-initrd"), "/vessel/initrd");
}

TEST(QemuArgvTest, BoundFilesShareOneDeviceWhoseRootHoldsThemAlone) {
  VmConfig config = sample();
  // Always there, so that every VM has a template's devices: with no files its root is empty.
  auto without = qemu_argv(config);
  EXPECT_EQ(std::count(without.begin(), without.end(), "-fsdev"), 3);
  EXPECT_EQ(after(without, "-fsdev", 2),
            "local,id=files,path=/vessel/files,security_model=passthrough");
  config.files = {{"/run/x/hosts", false, -1}, {"/home/u/app.conf", true, -1}};
  auto argv = qemu_argv(config);
  EXPECT_EQ(after(argv, "-fsdev", 2),
            "local,id=files,path=/vessel/files,security_model=passthrough");
  EXPECT_EQ(after(argv, "-device", 6), "virtio-9p-device,fsdev=files,mount_tag=files");
}

TEST(QemuArgvTest, FreedGuestMemoryIsReportedToTheHostAndHintedToASave) {
  auto argv = qemu_argv(sample());
  EXPECT_NE(std::find(argv.begin(), argv.end(),
                      "virtio-balloon-device,free-page-reporting=on,deflate-on-oom=on,"
                      "free-page-hint=on,iothread=balloon"),
            argv.end());
  // QEMU takes the hints in a thread of their own.
  EXPECT_EQ(after(argv, "-object"), "iothread,id=balloon");
}

TEST(QemuArgvTest, ARestoredVmLoadsItsStateInsteadOfAKernel) {
  VmConfig config = sample();
  config.incoming_fd = 9;
  auto argv = qemu_argv(config);
  EXPECT_EQ(after(argv, "-incoming"), "fd:" + std::to_string(kQemuIncomingFd));
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-kernel"), argv.end());
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-append"), argv.end());
  // Only the builder of a template talks to QEMU's monitor.
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "-mon"), argv.end());
  config.monitor = true;
  EXPECT_EQ(after(qemu_argv(config), "-mon"), "chardev=monitor,mode=control");
}

TEST(QemuArgvTest, ATemplatesCardHasNoBackendAndARestoredOneItsTap) {
  VmConfig config = sample();
  config.nics = {{-1, ""}};
  EXPECT_EQ(after(qemu_argv(config), "-netdev"), "hubport,id=net0,hubid=0");
  config.nics = {{7, "02:00:00:00:00:01"}};
  auto argv = qemu_argv(config);
  EXPECT_EQ(after(argv, "-netdev"),
            "tap,id=net0,fd=" + std::to_string(kQemuFirstTapFd) + ",vhost=off");
}

TEST(QemuArgvTest, TheConsoleIsASocketTheShimReads) {
  auto argv = qemu_argv(sample());
  EXPECT_EQ(after(argv, "-serial"), "chardev:console");
  EXPECT_EQ(after(argv, "-chardev", 0), "socket,id=console,fd=" + std::to_string(kQemuConsoleFd));
}

TEST(QemuArgvTest, KvmUsesTheHostCpuAndNoTscHint) {
  VmConfig config = sample();
  config.accel = Accel::Kvm;
  auto argv = qemu_argv(config);
  EXPECT_EQ(after(argv, "-accel"), "kvm");
  EXPECT_EQ(after(argv, "-cpu"), "host");
  EXPECT_EQ(after(argv, "-append").find("tsc_early_khz"), std::string::npos);
}

TEST(QemuArgvTest, PciMachinesGetPciDevices) {
  VmConfig config = sample();
  config.machine_type = "q35";
  auto argv = qemu_argv(config);
  EXPECT_EQ(after(argv, "-machine"), "q35");
  EXPECT_EQ(after(argv, "-device"), "virtio-serial-pci");
}

}  // namespace vessel::hypervisor

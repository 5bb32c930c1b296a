// What the TCG fallback says on each kind of host: a tree of our own stands for /dev/kvm and
// /sys/module (hypervisor::KvmHost), so every line is pinned on every host, whatever its KVM.
#include "hypervisor/accel.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/harness.h"

namespace vessel::hypervisor {

namespace {

class KvmHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_host.device = m_dir.path() + "/kvm";
    m_host.modules = m_dir.path() + "/module";
    std::filesystem::create_directories(m_host.modules);
  }
  void load(const std::string& module) {
    std::filesystem::create_directories(m_host.modules + "/" + module);
  }
  void make_device(mode_t mode) {
    std::ofstream(m_host.device) << "";
    ::chmod(m_host.device.c_str(), mode);
  }
  // The line the shim logs when it falls back: choose_accel as the shim calls it, on this tree.
  std::string warning() {
    ::setenv("VESSEL_KVM_DEVICE", m_host.device.c_str(), 1);
    ::setenv("VESSEL_SYS_MODULE", m_host.modules.c_str(), 1);
    test::TempDir cache;
    auto choice = choose_accel(Accel::Auto, cache.path());
    ::unsetenv("VESSEL_KVM_DEVICE");
    ::unsetenv("VESSEL_SYS_MODULE");
    EXPECT_TRUE(choice.has_value());
    EXPECT_EQ(choice->accel, Accel::Tcg);
    return choice->warning;
  }
  std::string fallback(const std::string& reason) {
    return "KVM cannot be used (" + reason +
           "): running the VM under TCG emulation, which is much slower";
  }

  test::TempDir m_dir;
  KvmHost m_host;
};

TEST_F(KvmHostTest, AHostWithoutKvmAtAll) {
  EXPECT_EQ(warning(), fallback(m_host.device + " does not exist: this host's kernel has no KVM"));
}

TEST_F(KvmHostTest, TheKvmModuleWithoutADeviceOrAVendorModule) {
  load("kvm");
  EXPECT_EQ(warning(), fallback(m_host.device +
                                " does not exist, and neither kvm_intel nor kvm_amd is loaded"));
}

TEST_F(KvmHostTest, KvmPvmWithoutADevice) {
  load("kvm");
  load("kvm_pvm");
  EXPECT_EQ(warning(), fallback(m_host.device +
                                " does not exist, and the host's only KVM is kvm_pvm, which runs "
                                "only PVM guest kernels"));
}

TEST_F(KvmHostTest, AVendorModuleWithoutADevice) {
  load("kvm");
  load("kvm_amd");
  EXPECT_EQ(warning(), fallback(m_host.device + " does not exist, though KVM is loaded"));
}

TEST_F(KvmHostTest, KvmPvmWithADevice) {
  load("kvm");
  load("kvm_pvm");
  make_device(0666);
  EXPECT_EQ(warning(),
            fallback("the host's KVM is kvm_pvm, which runs only PVM guest kernels, not vessel's"));
}

TEST_F(KvmHostTest, ADeviceWithoutAVendorModule) {
  load("kvm");
  make_device(0666);
  EXPECT_EQ(warning(), fallback("neither kvm_intel nor kvm_amd is loaded"));
}

TEST_F(KvmHostTest, ADeviceThatIsNotKvm) {
  load("kvm");
  load("kvm_intel");
  make_device(0666);
  EXPECT_EQ(warning(), fallback(m_host.device + " has an unknown API version"));
}

// As a user outside the device's group: the probe's words, computed in a child that is not root.
TEST_F(KvmHostTest, ADeviceTheUserMayNotOpen) {
  load("kvm");
  load("kvm_amd");
  make_device(0600);
  ::chmod(m_dir.path().c_str(), 0755);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    std::string reason = kvm_unusable_reason(m_host).value_or("usable");
    ssize_t written = ::write(fds[1], reason.data(), reason.size());
    ::_exit(written == static_cast<ssize_t>(reason.size()) ? 0 : 3);
  }
  ::close(fds[1]);
  std::string reason;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) reason.append(buffer, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(reason, m_host.device +
                        ": permission denied: add yourself to the kvm group: sudo usermod -aG "
                        "kvm $USER");
}

}  // namespace

}  // namespace vessel::hypervisor

// vessel under KVM: the accelerator nearly every user's host has. On a host whose KVM can run
// vessel's guest these run directly; elsewhere they are skipped, saying why, and CI runs them
// inside a VM that has KVM (tests/kvm/l1.sh: an L1 booted under TCG, nested virtualization of
// TCG's emulated AMD SVM), where VESSEL_REQUIRE_KVM=1 makes a missing KVM a failure.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "hypervisor/accel.h"
#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

namespace {

constexpr const char* kTcgLine = "running the VM under TCG emulation";

// What the guest's kernel reads its time from: kvm-clock only when KVM runs it.
constexpr const char* kClock =
    "cat /sys/devices/system/clocksource/clocksource0/current_clocksource";

class KvmTest : public TemplateTest {
 protected:
  void SetUp() override {
    if (auto reason = hypervisor::kvm_unusable_reason(hypervisor::KvmHost::from_environment())) {
      if (std::getenv("VESSEL_REQUIRE_KVM"))
        FAIL() << "VESSEL_REQUIRE_KVM is set, but KVM cannot be used: " << *reason;
      GTEST_SKIP() << "this host's KVM cannot run vessel's guest (" << *reason
                   << "): make test runs these inside a nested VM instead (kvm_nested)";
    }
    TemplateTest::SetUp();
  }

  // The bundle's process (TemplateTest made the bundle) runs `args`; `change` edits the rest.
  void set_process(const std::vector<std::string>& args,
                   const std::function<void(nlohmann::json&)>& change = {}) {
    auto config = read_json(sh("cat " + m_bundle + "/config.json").out);
    config["process"]["args"] = args;
    if (change) change(config);
    std::ofstream(m_bundle + "/config.json") << config.dump();
  }
};

}  // namespace

// check boots vessel's own guest under KVM to decide, and says so.
TEST_F(KvmTest, CheckSaysKvmRunsVesselsGuest) {
  auto check = vessel_cmd({"check"});
  size_t at = check.out.find("✔ KVM: runs vessel's guest: it booted in ");
  ASSERT_NE(at, std::string::npos) << check.out;
  std::cout << check.out.substr(at, check.out.find('\n', at) - at) << "\n";  // for the record
  EXPECT_EQ(check.out.find(kTcgLine), std::string::npos) << check.out;
}

TEST_F(KvmTest, RunPrintsTheGuestKernelAndItsExitCodeUnderKvm) {
  set_process({"sh", "-c", std::string("uname -r; ") + kClock + "; exit 3"});
  auto result = vessel_cmd({"run", "kvm-run"});
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_EQ(result.err.find(kTcgLine), std::string::npos) << result.err;
  std::string release = result.out.substr(0, result.out.find('\n'));
  EXPECT_TRUE(release.ends_with("-vessel")) << result.out;
  EXPECT_NE(release, host_kernel_release());
  EXPECT_EQ(result.out.substr(result.out.find('\n') + 1), "kvm-clock\n");
  expect_nothing_left("kvm-run");
}

// `accel = "tcg"` on a host whose KVM works: the VM runs under TCG because it was asked to, and
// nothing warns (TCG by choice is no fallback).
TEST_F(KvmTest, AccelTcgIsHonouredWhereKvmWorks) {
  std::string config = m_dir.path() + "/tcg.toml";
  std::ofstream(config) << "[hypervisor.qemu]\naccel = \"tcg\"\n";
  set_process({"sh", "-c", kClock});
  auto result = vessel_cmd({"run", "kvm-tcg"}, {.env = {{"VESSEL_CONFIG", config}}});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out, "kvm-clock\n");
  EXPECT_EQ(result.err, "");
  expect_nothing_left("kvm-tcg");
}

// --cpus 2 as Podman writes it: a quota of two periods is two vCPUs, both online in the guest.
TEST_F(KvmTest, TwoCpusOfQuotaAreTwoVcpus) {
  set_process({"nproc"}, [](nlohmann::json& config) {
    config["linux"]["resources"]["cpu"] = {{"quota", 200000}, {"period", 100000}};
  });
  auto result = vessel_cmd({"run", "kvm-cpus"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "2\n") << result.err;
  expect_nothing_left("kvm-cpus");
}

// A template saved from a guest under KVM (its vCPU state is KVM's) is restored under KVM, and
// each clone draws its own random bytes and has the host's time.
TEST_F(KvmTest, ATemplateSavedUnderKvmIsRestoredUnderKvm) {
  auto booted = create("kvm-booted");
  ASSERT_EQ(booted.exit_code, 0) << booted.err;
  ASSERT_EQ(vessel_cmd({"delete", "--force", "kvm-booted"}).exit_code, 0);
  std::string saved = wait_for_template();
  ASSERT_NE(saved, "");
  std::string header;
  std::getline(std::ifstream(saved), header);
  EXPECT_NE(header.find("-accel kvm"), std::string::npos) << header;

  std::set<std::string> random;
  for (std::string id : {"kvm-clone-a", "kvm-clone-b"}) {
    auto created = create(id);
    ASSERT_EQ(created.exit_code, 0) << created.err;
    ASSERT_EQ(vessel_cmd({"start", id}).exit_code, 0);
    EXPECT_NE(shim_log(id).find("from the template"), std::string::npos) << shim_log(id);
    EXPECT_EQ(shim_log(id).find(kTcgLine), std::string::npos) << shim_log(id);
    const long long before = ::time(nullptr);
    auto drawn = vessel_cmd({"exec", id, "sh", "-c",
                             std::string("head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; "
                                         "echo; date +%s; ") +
                                 kClock});
    ASSERT_EQ(drawn.exit_code, 0) << drawn.err;
    std::istringstream lines(drawn.out);
    std::string bytes, time, clock;
    std::getline(lines, bytes);
    std::getline(lines, time);
    std::getline(lines, clock);
    EXPECT_EQ(bytes.size(), 64u) << drawn.out;
    random.insert(bytes);
    // The host's time while the exec ran (a nested guest's exec takes seconds).
    EXPECT_GE(std::stoll(time), before - 1) << drawn.out;
    EXPECT_LE(std::stoll(time), static_cast<long long>(::time(nullptr)) + 1) << drawn.out;
    EXPECT_EQ(clock, "kvm-clock");
    ASSERT_EQ(vessel_cmd({"delete", "--force", id}).exit_code, 0);
    expect_nothing_left(id);
  }
  EXPECT_EQ(random.size(), 2u) << "two clones drew the same random bytes";
}

// KILL ends the VM and its shim; delete leaves nothing; a container created and never started
// goes with delete --force.
TEST_F(KvmTest, KillAndDeleteLeaveNothing) {
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "kvm-killed"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "kvm-killed"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"kill", "kvm-killed", "KILL"}).exit_code, 0);
  std::string status;
  for (int i = 0; i < 300 && status != "stopped"; ++i) {
    auto state = vessel_cmd({"state", "kvm-killed"});
    if (state.exit_code == 0) status = read_json(state.out)["status"];
    if (status != "stopped") std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, "stopped");
  EXPECT_EQ(processes_matching("vessel-kvm-killed "), std::vector<std::string>{});
  ASSERT_EQ(vessel_cmd({"delete", "kvm-killed"}).exit_code, 0);
  expect_nothing_left("kvm-killed");

  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "kvm-created"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "kvm-created"}).exit_code, 0);
  expect_nothing_left("kvm-created");
}

// The probe says KVM can run a guest, QEMU then cannot (here its /dev/kvm is not KVM, in a mount
// namespace of the test's own; the probe opens a node of its own): the VM runs under TCG with one
// warning line, and the next container goes to TCG at once, with the same one line.
TEST_F(KvmTest, AVmWhoseKvmStartFailsFallsBackToTcgWithOneLine) {
  std::string node = m_dir.path() + "/kvm";
  ASSERT_EQ(sh("mknod " + node + " c 10 232").exit_code, 0);
  set_process({"sh", "-c", std::string(kClock) + "; echo ran; exit 4"});
  auto broken_kvm = [&](const std::string& id) {
    return sh("unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec " + vessel() + " --root " +
                  m_root + " run " + id + "'",
              {.env = {{"VESSEL_KVM_DEVICE", node}}, .cwd = m_bundle});
  };
  for (std::string id : {"kvm-fallback", "kvm-fallback-again"}) {
    auto result = broken_kvm(id);
    EXPECT_EQ(result.exit_code, 4) << result.err;
    EXPECT_TRUE(result.out.ends_with("\nran\n")) << result.out << result.err;
    EXPECT_FALSE(result.out.starts_with("kvm-clock")) << result.out;
    EXPECT_EQ(count(result.err, "\n"), 1u) << result.err;
    EXPECT_TRUE(
        result.err.starts_with("vessel: warning: KVM cannot be used (QEMU could not start "
                               "the VM under KVM: "))
        << result.err;
    EXPECT_NE(result.err.find("): " + std::string(kTcgLine) + ", which is much slower\n"),
              std::string::npos)
        << result.err;
    expect_nothing_left(id);
  }
}

}  // namespace vessel::test

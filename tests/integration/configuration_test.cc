// vessel's configuration and installation: configuration.toml and its errors, `vessel env`,
// enable_debug, the guest image's agent, a host without KVM, `check`, `setup`, help and man page.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

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

// `vessel --help`, `vessel COMMAND --help`, and `man vessel` after `make install PREFIX=…`.
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

}  // namespace vessel::test

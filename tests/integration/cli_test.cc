// The command line as runc's callers drive it: runc's global flags, the state root, a bad bundle
// refused in one line (or one JSON object in the log), and the OCI features document.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

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

}  // namespace vessel::test

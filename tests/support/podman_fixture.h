// The fixture of the tests of vessel under real Podman, as root (tests/e2e/podman_*_test.cc):
// `podman run --runtime=<build>/vessel` with a locally built busybox image
// (tests/e2e/build-image.sh). Podman runs with scripts/podman-sandbox.conf, the settings this
// sandbox needs (see docs/testing.md); vessel itself depends on none of them.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/harness.h"

namespace vessel::test {

inline constexpr const char* kImage = "localhost/vessel-test";

class PodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "these tests drive Podman as root; the rootless ones are separate";
    if (::access("/usr/bin/podman", X_OK) != 0)
      GTEST_SKIP() << "podman is not installed: run scripts/install-deps.sh";
  }

  CommandOptions env(CommandOptions options = {}) {
    options.env["CONTAINERS_CONF"] = source_dir() + "/scripts/podman-sandbox.conf";
    return options;
  }

  CommandResult podman(std::vector<std::string> args, CommandOptions options = {}) {
    args.insert(args.begin(), "podman");
    return run(args, env(std::move(options)));
  }

  std::vector<std::string> podman_run(std::vector<std::string> tail) {
    std::vector<std::string> args = {"run", "--runtime=" + vessel()};
    args.insert(args.end(), tail.begin(), tail.end());
    return args;
  }

  void expect_nothing_left(const std::string& id) {
    EXPECT_EQ(processes_matching("vessel-" + id), std::vector<std::string>{})
        << "QEMU or shim left running";
    EXPECT_FALSE(std::filesystem::exists("/run/vessel/" + id)) << "state directory left behind";
  }

  std::string full_id(const std::string& output) { return output.substr(0, output.find('\n')); }

  // Polls `podman logs` until `text` appears (the container prints it once it is ready).
  bool wait_for_log(const std::string& id, const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (podman({"logs", id}).out.find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
};

}  // namespace vessel::test

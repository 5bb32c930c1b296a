// The fixture of the tests of vessel under rootless Podman (tests/e2e/rootless_*_test.cc), as the
// reference describes: an unprivileged user with subuid and subgid ranges and the kvm group
// (tests/e2e/rootless-setup.sh makes one), vessel installed with `make install`, registered with
// `vessel setup --user`, Podman's defaults (slirp4netns).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <string>

#include "support/harness.h"

namespace vessel::test {

inline constexpr const char* kUser = "vessel-tester";
inline constexpr const char* kImage = "localhost/vessel-rootless";

// Where `make install` put vessel for the user (VESSEL_ROOTLESS_PREFIX, from tests/CMakeLists.txt).
inline std::string prefix() { return VESSEL_ROOTLESS_PREFIX; }

// A login shell as the user: no XDG_RUNTIME_DIR, so Podman uses /tmp/podman-run-UID.
inline CommandResult as_user(const std::string& user, const std::string& script,
                             const CommandOptions& options = {}) {
  return run({"runuser", "-l", user, "-c", "cd /tmp && " + script}, options);
}

inline std::string uid_of(const std::string& user) {
  auto result = run({"id", "-u", user});
  return result.out.substr(0, result.out.find('\n'));
}

// Podman warns that / is not a shared mount in this sandbox; nothing else may reach stderr.
inline std::string without_podman_noise(const std::string& text) {
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
inline CommandResult import_busybox_image(const std::string& user, const std::string& image) {
  return as_user(user,
                 "set -e; d=$(mktemp -d); chmod 755 $d; mkdir -p $d/bin $d/proc $d/sys $d/dev "
                 "$d/tmp $d/etc $d/www; "
                 "cp /bin/busybox $d/bin/; for a in $(/bin/busybox --list); do [ $a = busybox ] || "
                 "ln -s busybox $d/bin/$a; done; echo served-from-the-vm > $d/www/index.html; "
                 "tar -C $d -cf $d.tar .; podman import --change 'CMD [\"/bin/sh\"]' $d.tar " +
                     image + " >/dev/null; rm -rf $d $d.tar");
}

// Not in an anonymous namespace: the tests of one suite, spread over several files, must share
// one fixture class (gtest refuses two of the same name from different translation units).
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

}  // namespace vessel::test

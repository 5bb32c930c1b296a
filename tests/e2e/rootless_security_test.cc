// Privileges and confinement, rootless: QEMU in a jail of its own, capability sets exactly rootless
// runc's, and a bound device as the guest's own device with the same numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

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

}  // namespace vessel::test

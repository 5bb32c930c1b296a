// A Podman pod for an unprivileged user (docs/pods.md): one VM whose members share its network
// and hostname, and nothing left when it is removed.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

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

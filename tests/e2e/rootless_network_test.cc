// Networking for an unprivileged user: slirp4netns to the host's loopback and published ports,
// --network=none and host refused, and the resolv.conf, hosts and hostname Podman prepared.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/rootless_fixture.h"

namespace vessel::test {

TEST_F(RootlessTest, Slirp4netnsReachesTheHostLoopbackAndPublishesPorts) {
  TempDir www;
  sh("echo hello-from-the-host > " + www.path() + "/index.html; chmod -R a+rX " + www.path());
  auto server = sh("busybox httpd -p 127.0.0.1:18090 -h " + www.path());
  ASSERT_EQ(server.exit_code, 0) << server.err;
  auto fetched = podman(
      std::string("run --rm --runtime=vessel --network=slirp4netns:allow_host_loopback=true ") +
      kImage + " wget -qO- http://10.0.2.2:18090/index.html");
  sh("pkill -f 'httpd -p 127.0.0.1:18090'");
  EXPECT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_EQ(fetched.out, "hello-from-the-host\n");

  auto started = podman(std::string("run -d --runtime=vessel -p 18080:80 ") + kImage +
                        " httpd -f -p 80 -h /www");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string id = started.out.substr(0, started.out.find('\n'));
  CommandResult page;
  for (int i = 0; i < 50 && page.out.empty(); ++i) {
    page = sh("curl -s -m 2 http://127.0.0.1:18080/index.html");
    if (page.out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(page.out, "served-from-the-vm\n");
  EXPECT_EQ(podman("rm -f -t 0 " + id).exit_code, 0);
  expect_nothing_left();
}

TEST_F(RootlessTest, NetworkNoneHasOnlyLoopbackAndHostIsRefused) {
  auto none = podman(std::string("run --rm --runtime=vessel --network=none ") + kImage +
                     " ls /sys/class/net");
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "lo\n");
  auto host = podman(std::string("run --rm --runtime=vessel --network=host ") + kImage + " true");
  EXPECT_EQ(host.exit_code, 126);
  EXPECT_NE(
      host.err.find("a container in a VM cannot share the host's network: drop --network=host"),
      std::string::npos)
      << host.err;
  expect_nothing_left();
}

TEST_F(RootlessTest, ResolvConfHostsAndHostnameAreThePodmanPreparedOnes) {
  auto result = podman(
      std::string("run --rm --runtime=vessel --hostname inside --add-host db.example:10.1.2.3 "
                  "--dns 10.9.9.9 ") +
      kImage + " sh -c 'hostname; cat /etc/hostname; echo; cat /etc/hosts /etc/resolv.conf'");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.out.starts_with("inside\ninside\n")) << result.out;
  EXPECT_NE(result.out.find("10.1.2.3\tdb.example"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("nameserver 10.9.9.9"), std::string::npos) << result.out;
}

}  // namespace vessel::test

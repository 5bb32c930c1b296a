// Networking under Podman: a netavark bridge both ways and published ports, --network=none, and
// --network=host refused.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/podman_fixture.h"

namespace vessel::test {

// Root's default network: a netavark bridge. The guest's eth0 takes the address Podman gave.
TEST_F(PodmanTest, BridgeNetworkWorksBothWaysBetweenContainersAndWithPublishedPorts) {
  auto server = podman(
      podman_run({"-d", "-p", "18081:80", kImage, "sh", "-c",
                  "mkdir -p /www; echo from-c1 > /www/index.html; exec httpd -f -p 80 -h /www"}));
  ASSERT_EQ(server.exit_code, 0) << server.err;
  std::string id = full_id(server.out);
  std::string ip = podman({"inspect", "-f", "{{.NetworkSettings.IPAddress}}", id}).out;
  ip = ip.substr(0, ip.find('\n'));
  ASSERT_FALSE(ip.empty());
  auto fetch = [](const std::string& url) {
    CommandResult page;
    for (int i = 0; i < 50 && page.out.empty(); ++i) {
      page = sh("curl -s -m 2 " + url);
      if (page.out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return page.out;
  };
  EXPECT_EQ(fetch("http://" + ip + "/index.html"), "from-c1\n") << "host to container by IP";
  EXPECT_EQ(fetch("http://127.0.0.1:18081/index.html"), "from-c1\n") << "published port";
  auto neighbour =
      podman(podman_run({"--rm", kImage, "wget", "-qO-", "http://" + ip + "/index.html"}));
  EXPECT_EQ(neighbour.out, "from-c1\n") << "container to container: " << neighbour.err;

  TempDir www;
  sh("echo from-the-host > " + www.path() + "/index.html");
  ASSERT_EQ(sh("busybox httpd -p 0.0.0.0:18082 -h " + www.path()).exit_code, 0);
  auto to_host = podman(podman_run(
      {"--rm", kImage, "wget", "-qO-", "http://host.containers.internal:18082/index.html"}));
  sh("pkill -f 'httpd -p 0.0.0.0:18082'");
  EXPECT_EQ(to_host.out, "from-the-host\n") << "container to host: " << to_host.err;
  EXPECT_EQ(podman({"rm", "-f", "-t", "0", id}).exit_code, 0);
  expect_nothing_left(id);
}

TEST_F(PodmanTest, NetworkNoneHasOnlyLoopbackAndHostNetworkIsRefused) {
  auto none = podman(podman_run({"--rm", "--network=none", kImage, "ls", "/sys/class/net"}));
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "lo\n");
  auto host = podman(podman_run({"--rm", "--network=host", kImage, "true"}));
  EXPECT_EQ(host.exit_code, 126);
  EXPECT_NE(
      host.err.find("a container in a VM cannot share the host's network: drop --network=host"),
      std::string::npos)
      << host.err;
}

}  // namespace vessel::test

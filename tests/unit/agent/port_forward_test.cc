#include "agent/port_forward.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "common/channel/messages.h"

namespace vessel::agent {

namespace {

constexpr const char* kHeader =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode\n";

std::string tcp_line(const std::string& local, const std::string& state) {
  return "   0: " + local + " 00000000:0000 " + state +
         " 00000000:00000000 00:00000000 00000000     0        0 12345 1 0 100 0 0 10 0\n";
}

}  // namespace

TEST(PortForwardTest, ListenersAConnectionTo127001ReachesAndNoOthers) {
  std::string tcp = std::string(kHeader) + tcp_line("00000000:1F90", "0A") +  // 0.0.0.0:8080
                    tcp_line("0100007F:1F91", "0A") +                         // 127.0.0.1:8081
                    tcp_line("0200007F:1F92", "0A") +                         // 127.0.0.2
                    tcp_line("0A01A8C0:1F93", "0A") +                         // 192.168.1.10
                    tcp_line("0100007F:1F94", "01") +                         // established
                    tcp_line("0100007F:0050", "0A") +                         // port 80
                    "garbage line\n" + tcp_line("00000000:0000", "0A");       // port 0
  std::string tcp6 = std::string(kHeader) +
                     tcp_line(std::string(32, '0') + ":1F95", "0A") +           // [::]
                     tcp_line("0000000000000000FFFF00000100007F:1F96", "0A") +  // mapped
                     tcp_line("00000000000000000000000001000000:1F97", "0A") +  // [::1]
                     tcp_line(std::string(32, '0') + ":1F90", "0A");            // again
  EXPECT_EQ(loopback_listeners(tcp, tcp6), (std::vector<uint16_t>{80, 8080, 8081, 8085, 8086}));
  EXPECT_TRUE(loopback_listeners("", "").empty());
}

TEST(PortForwardTest, AtMostTheLowestPortsAChannelMessageTakes) {
  std::string tcp = kHeader;
  for (int port = 2000; port < 3000; ++port) {
    char local[32];
    std::snprintf(local, sizeof local, "00000000:%04X", port);
    tcp += tcp_line(local, "0A");
  }
  auto ports = loopback_listeners(tcp, "");
  ASSERT_EQ(ports.size(), channel::kMaxGuestPorts);
  EXPECT_EQ(ports.front(), 2000);
  EXPECT_EQ(ports.back(), 2000 + channel::kMaxGuestPorts - 1);
}

}  // namespace vessel::agent

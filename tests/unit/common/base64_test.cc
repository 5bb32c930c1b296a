#include "common/base64.h"

#include <gtest/gtest.h>

namespace vessel {

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37));
    auto decoded = base64_decode(base64_encode(bytes));
    ASSERT_TRUE(decoded);
    ASSERT_EQ(*decoded, bytes);
  }
  EXPECT_EQ(base64_encode("nameserver 10.0.2.3\n"), "bmFtZXNlcnZlciAxMC4wLjIuMwo=");
}

TEST(Base64Test, RejectsMalformedInput) {
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("ab!d"));
  EXPECT_FALSE(base64_decode("a=bc"));
}

}  // namespace vessel

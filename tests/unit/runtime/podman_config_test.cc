#include "runtime/podman_config.h"

#include <gtest/gtest.h>
#include <toml++/toml.h>

namespace vessel::runtime {

TEST(PodmanConfigTest, RegistersVesselAndKeepsTheUsersSettings) {
  auto text = register_runtime(
      "[containers]\nlog_size_max = 1000\n[engine]\nruntime_supports_json = [\"crun\", \"mine\"]\n"
      "[engine.runtimes]\nmine = [\"/opt/mine\"]\n",
      "/usr/local/bin/vessel", "containers.conf");
  ASSERT_TRUE(text) << text.error().message;
  auto table = toml::parse(*text);
  EXPECT_EQ(table["containers"]["log_size_max"].value<int64_t>(), 1000);
  EXPECT_EQ(table["engine"]["runtimes"]["mine"][0].value<std::string>(), "/opt/mine");
  EXPECT_EQ(table["engine"]["runtimes"]["vessel"][0].value<std::string>(), "/usr/local/bin/vessel");
  auto has = [&](const char* key, const char* value) {
    for (const auto& item : *table["engine"][key].as_array())
      if (item.value<std::string>() == value) return true;
    return false;
  };
  EXPECT_TRUE(has("runtime_supports_json", "vessel"));
  EXPECT_TRUE(has("runtime_supports_json", "mine"));
  EXPECT_TRUE(has("runtime_supports_nocgroup", "vessel"));  // singular: what Podman 4.3 reads
  EXPECT_TRUE(has("runtime_supports_kvm", "vessel"));
  EXPECT_TRUE(has("network_cmd_options", "port_handler=slirp4netns"));
}

TEST(PodmanConfigTest, RunningTwiceChangesNothing) {
  auto once = register_runtime("", "/v", "c.conf");
  ASSERT_TRUE(once);
  auto twice = register_runtime(*once, "/v", "c.conf");
  ASSERT_TRUE(twice);
  EXPECT_EQ(*once, *twice);
}

TEST(PodmanConfigTest, ABrokenFileIsNamed) {
  auto broken = register_runtime("[engine\n", "/v", "/home/u/.config/containers/containers.conf");
  ASSERT_FALSE(broken);
  EXPECT_TRUE(
      broken.error().message.starts_with("/home/u/.config/containers/containers.conf line 1: "));
  EXPECT_TRUE(broken.error().message.ends_with(": fix it, then run vessel setup --user again"));
}

TEST(PodmanConfigTest, DefaultMakesVesselTheEnginesRuntime) {
  auto text = register_runtime("[engine]\nruntime = \"crun\"\n", "/v", "c.conf", true);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_NE(text->find("runtime = 'vessel'"), std::string::npos) << *text;
  auto kept = register_runtime("[engine]\nruntime = \"crun\"\n", "/v", "c.conf");
  EXPECT_NE(kept->find("runtime = 'crun'"), std::string::npos) << *kept;
}

}  // namespace vessel::runtime

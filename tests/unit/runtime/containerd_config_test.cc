#include "runtime/containerd_config.h"

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include "host/oom_report.h"

namespace vessel::runtime {

namespace {
constexpr const char* kCri = "io.containerd.grpc.v1.cri";
}

TEST(ContainerdConfigTest, AddsTheHandlerAndKeepsTheRest) {
  auto registered = register_containerd_handler(
      "version = 2\nroot = \"/data/containerd\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n"
      "sandbox_image = \"pause:1\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes."
      "runc]\nruntime_type = \"io.containerd.runc.v2\"\n",
      "/usr/local/bin/vessel", "config.toml", false);
  ASSERT_TRUE(registered) << registered.error().message;
  auto table = toml::parse(registered->text);
  EXPECT_EQ(table["root"].value<std::string>(), "/data/containerd");
  auto cri = table["plugins"][kCri];
  EXPECT_EQ(cri["sandbox_image"].value<std::string>(), "pause:1");
  EXPECT_EQ(cri["containerd"]["runtimes"]["runc"]["runtime_type"].value<std::string>(),
            "io.containerd.runc.v2");
  auto vessel = cri["containerd"]["runtimes"]["vessel"];
  EXPECT_EQ(vessel["runtime_type"].value<std::string>(), "io.containerd.runc.v2");
  EXPECT_EQ(vessel["options"]["BinaryName"].value<std::string>(), "/usr/local/bin/vessel");
  EXPECT_EQ(vessel["pod_annotations"][0].value<std::string>(),
            "io.katacontainers.config.hypervisor.*");
  EXPECT_FALSE(cri["containerd"]["default_runtime_name"]);
  EXPECT_TRUE(registered->changes.empty());
}

TEST(ContainerdConfigTest, AnEmptyFileBecomesVersionTwoAndDefaultIsSaid) {
  auto registered = register_containerd_handler("", "/v", "config.toml", true);
  ASSERT_TRUE(registered);
  auto table = toml::parse(registered->text);
  EXPECT_EQ(table["version"].value<int64_t>(), 2);
  EXPECT_EQ(table["plugins"][kCri]["containerd"]["default_runtime_name"].value<std::string>(),
            "vessel");
  EXPECT_EQ(registered->changes,
            std::vector<std::string>{"the default runtime was \"runc\": it is \"vessel\""});
  auto again = register_containerd_handler(registered->text, "/v", "config.toml", true);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->text, registered->text);
  EXPECT_TRUE(again->changes.empty());
}

TEST(ContainerdConfigTest, TheCriPluginIsTurnedBackOn) {
  auto registered = register_containerd_handler(
      "version = 2\ndisabled_plugins = [\"cri\", \"io.containerd.snapshotter.v1.btrfs\"]\n", "/v",
      "config.toml", false);
  ASSERT_TRUE(registered);
  auto table = toml::parse(registered->text);
  ASSERT_EQ(table["disabled_plugins"].as_array()->size(), 1u);
  EXPECT_EQ(table["disabled_plugins"][0].value<std::string>(),
            "io.containerd.snapshotter.v1.btrfs");
  EXPECT_EQ(registered->changes,
            std::vector<std::string>{"the CRI plugin was in disabled_plugins: it is turned on"});
}

TEST(ContainerdConfigTest, VersionOneAndBrokenFilesAreRefusedSayingWhy) {
  auto old = register_containerd_handler("[plugins.cri]\nsandbox_image = \"p\"\n", "/v",
                                         "/etc/containerd/config.toml", false);
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().message,
            "/etc/containerd/config.toml is containerd's configuration version 1 (no \"version = "
            "2\"), whose keys vessel does not write: convert it (containerd config default prints "
            "version 2), then run vessel setup --containerd again");
  auto broken = register_containerd_handler("version = \n", "/v", "c.toml", false);
  ASSERT_FALSE(broken);
  EXPECT_TRUE(broken.error().message.starts_with("c.toml line 1: ")) << broken.error().message;
}

// containerd's `publish` reads a google.protobuf.Any: type_url (1) and value (2), the value a
// TaskOOM whose container_id is field 1; each a length-delimited field (key 0x0a or 0x12).
TEST(ContainerdConfigTest, TheOomEventIsAnAnyOfTaskOom) {
  std::string id(200, 'c');  // a length over 127 takes two bytes
  std::string value = std::string("\x0a\xc8\x01", 3) + id;
  EXPECT_EQ(task_oom_event(id),
            "\x0a\x19"
            "containerd.events.TaskOOM"
            "\x12\xcb\x01" +
                value);
}

}  // namespace vessel::runtime

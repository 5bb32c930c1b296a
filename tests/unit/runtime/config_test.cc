#include "runtime/config.h"

#include <gtest/gtest.h>

namespace vessel::runtime {

TEST(ConfigTest, ReadsKataKeyNames) {
  auto config = parse_config(R"(
[hypervisor.qemu]
path = "/opt/qemu"
kernel = "/k"
initrd = "/i"
machine_type = "q35"
default_vcpus = 2
default_memory = 512
accel = "tcg"
enable_debug = true
[agent]
enable_debug = true
)",
                             "test.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->hypervisor_path, "/opt/qemu");
  EXPECT_EQ(config->kernel, "/k");
  EXPECT_EQ(config->initrd, "/i");
  EXPECT_EQ(config->machine_type, "q35");
  EXPECT_EQ(config->default_vcpus, 2u);
  EXPECT_EQ(config->default_memory, 512u);
  EXPECT_EQ(config->accel, "tcg");
  EXPECT_TRUE(config->hypervisor_debug);
  EXPECT_TRUE(config->agent_debug);
}

TEST(ConfigTest, DefaultsPointAtTheBuiltGuestImage) {
  auto config = parse_config("", "built-in defaults");
  ASSERT_TRUE(config);
  EXPECT_TRUE(config->kernel.ends_with("/vmlinux"));
  EXPECT_TRUE(config->initrd.ends_with("/initrd.img"));
  EXPECT_EQ(config->machine_type, "microvm");
  EXPECT_EQ(config->accel, "auto");
}

TEST(ConfigTest, BadValuesGetOneSentence) {
  EXPECT_EQ(parse_config("[hypervisor.qemu]\naccel = \"fast\"\n", "c.toml").error().message,
            "c.toml: [hypervisor.qemu] accel must be \"auto\", \"kvm\" or \"tcg\", not \"fast\"");
  auto broken = parse_config("[hypervisor.qemu\n", "c.toml");
  ASSERT_FALSE(broken);
  EXPECT_TRUE(broken.error().message.starts_with("c.toml line 1: ")) << broken.error().message;
  EXPECT_TRUE(broken.error().message.ends_with(": fix the configuration file"));
}

}  // namespace vessel::runtime

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
            "c.toml:2: hypervisor.qemu.accel: must be \"auto\", \"kvm\" or \"tcg\", not \"fast\"");
  auto broken = parse_config("[hypervisor.qemu\n", "c.toml");
  ASSERT_FALSE(broken);
  EXPECT_TRUE(broken.error().message.starts_with("c.toml:1: ")) << broken.error().message;
  EXPECT_TRUE(broken.error().message.ends_with(": fix the configuration file"));
}

// Every key is known and of its type; the error names the file, the line and the key.
TEST(ConfigTest, UnknownKeysAndWrongTypesNameFileLineAndKey) {
  auto error = [](const std::string& text) {
    auto config = parse_config(text, "c.toml");
    return config ? std::string("(accepted)") : config.error().message;
  };
  EXPECT_EQ(error("[hypervisor.qemu]\npath = \"/q\"\ndefualt_memory = 512\n"),
            "c.toml:3: hypervisor.qemu.defualt_memory: unknown key; [hypervisor.qemu] takes path, "
            "kernel, initrd, machine_type, kernel_params, accel, default_vcpus, default_memory, "
            "enable_debug, enable_annotations, default_maxvcpus, default_maxmemory");
  EXPECT_EQ(error("[hypervisor.qemu]\ndefault_memory = \"512\"\n"),
            "c.toml:2: hypervisor.qemu.default_memory: must be an integer, not a string");
  EXPECT_EQ(error("[agent]\nenable_debug = 1\n"),
            "c.toml:2: agent.enable_debug: must be true or false, not an integer");
  EXPECT_EQ(error("[hypervisor.firecracker]\npath = \"/f\"\n"),
            "c.toml:1: hypervisor.firecracker: unknown section; vessel reads [hypervisor.qemu], "
            "[agent], [runtime] and [factory]");
  EXPECT_EQ(error("shared_fs = \"virtio-fs\"\n"),
            "c.toml:1: shared_fs: unknown key; vessel reads [hypervisor.qemu], [agent], "
            "[runtime] and [factory]");
  EXPECT_EQ(error("[hypervisor.qemu]\ndefault_vcpus = 0\n"),
            "c.toml:2: hypervisor.qemu.default_vcpus: must be from 1 to 64");
}

TEST(ConfigTest, EachValueRemembersItsOriginAndConfiguredPathsMustExist) {
  auto config = parse_config("[hypervisor.qemu]\n\nkernel = \"/nonexistent/vmlinux\"\n", "c.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->origin.at("hypervisor.qemu.kernel"), "c.toml:3");
  EXPECT_FALSE(config->origin.contains("hypervisor.qemu.initrd"));
  auto missing = check_configured_paths(*config);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            "c.toml:3: hypervisor.qemu.kernel: /nonexistent/vmlinux does not exist: fix the path, "
            "or remove the key to use vessel's own");
}

// Per-container sizing by annotation, Kata's keys or vessel's, within what the configuration
// enables and allows.
TEST(ConfigTest, AnnotationsSizeTheVmWithinTheConfiguredCeilings) {
  auto config = parse_config("[hypervisor.qemu]\ndefault_maxmemory = 1024\n", "c.toml");
  ASSERT_TRUE(config);
  auto sized = base_size(*config, {{"io.katacontainers.config.hypervisor.default_memory", "512"},
                                   {"io.vessel.default_vcpus", "2"},
                                   {"org.example.other", "x"}});
  ASSERT_TRUE(sized) << sized.error().message;
  EXPECT_EQ(sized->memory_mib, 512u);
  EXPECT_EQ(sized->vcpus, 2u);
  EXPECT_EQ(base_size(*config, {{"io.vessel.default_memory", "2048"}}).error().message,
            "annotation io.vessel.default_memory = \"2048\": must be a whole number of MiB from 64 "
            "to 1024 (default_maxmemory in the configuration)");
  EXPECT_EQ(base_size(*config, {{"io.vessel.default_vcpus", "two"}}).error().message,
            "annotation io.vessel.default_vcpus = \"two\": must be a whole number of vCPUs from 1 "
            "to 16 (default_maxvcpus in the configuration)");
  auto closed = parse_config("[hypervisor.qemu]\nenable_annotations = []\n", "c.toml");
  ASSERT_TRUE(closed) << closed.error().message;
  EXPECT_EQ(base_size(*closed, {{"io.katacontainers.config.hypervisor.default_vcpus", "2"}})
                .error()
                .message,
            "annotation io.katacontainers.config.hypervisor.default_vcpus is not enabled: add "
            "\"default_vcpus\" to [hypervisor.qemu] enable_annotations in c.toml");
}

}  // namespace vessel::runtime

#include "common/oci_spec.h"

#include <gtest/gtest.h>

namespace vessel::oci {

TEST(OciSpecTest, ParsesWhatTheAgentActsOn) {
  auto spec =
      parse_spec_text(R"({"ociVersion":"1.0.2","process":{"terminal":true,"args":["sh","-c","x"],
    "env":["A=1"],"cwd":"/work","user":{"uid":1000,"gid":100,"additionalGids":[10,11],"umask":18}},
    "root":{"path":"rootfs","readonly":true},"hostname":"h",
    "mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid"]}],
    "linux":{"namespaces":[{"type":"network","path":"/run/netns/x"},{"type":"pid"}]}})",
                      "config.json");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_TRUE(spec->process.terminal);
  EXPECT_EQ(spec->process.args, (std::vector<std::string>{"sh", "-c", "x"}));
  EXPECT_EQ(spec->process.cwd, "/work");
  EXPECT_EQ(spec->process.user.uid, 1000u);
  EXPECT_EQ(spec->process.user.additional_gids, (std::vector<gid_t>{10, 11}));
  EXPECT_EQ(spec->process.user.umask, 18u);
  EXPECT_TRUE(spec->root_readonly);
  EXPECT_EQ(spec->mounts.at(0).options.at(0), "nosuid");
  ASSERT_NE(spec->find_namespace("network"), nullptr);
  EXPECT_EQ(spec->find_namespace("network")->path, "/run/netns/x");
  EXPECT_EQ(spec->find_namespace("user"), nullptr);
}

TEST(OciSpecTest, ErrorsNameTheFileAndTheField) {
  EXPECT_EQ(parse_spec_text(R"({"ociVersion":"1.0.2","process":{"args":[]},"root":{"path":"r"}})",
                            "B/config.json")
                .error()
                .message,
            "B/config.json: process.args must name the program to run");
  EXPECT_EQ(
      parse_spec_text(
          R"({"ociVersion":"1.0.2","process":{"args":["x"],"cwd":"rel"},"root":{"path":"r"}})",
          "B/config.json")
          .error()
          .message,
      "B/config.json: process.cwd must be an absolute path");
  EXPECT_EQ(parse_spec_text(R"({"ociVersion":"1.0.2","process":{"args":["x"]}})", "B/config.json")
                .error()
                .message,
            "B/config.json: root.path is missing");
  auto broken = parse_spec_text("{", "B/config.json");
  ASSERT_FALSE(broken);
  EXPECT_TRUE(broken.error().message.starts_with(
      "B/config.json is not valid JSON (parse error at line 1, column 2"))
      << broken.error().message;
}

TEST(OciSpecTest, LoadBundleRequiresTheRootFilesystem) {
  auto missing = load_bundle("/nonexistent-bundle");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "bundle /nonexistent-bundle has no config.json");
}


// Found by the oci_spec fuzzer: each of these threw out of the parser, or truncated an id.
TEST(OciSpecTest, WrongTypesAndHugeNumbersAreErrorsNotExceptionsOrRoot) {
  auto error = [](const std::string& text) {
    auto spec = parse_spec_text(text, "config.json");
    return spec ? std::string("(accepted)") : spec.error().message;
  };
  EXPECT_EQ(error(R"({"a":1e999})"),
            "config.json is not valid JSON (number overflow parsing '1e999')");
  EXPECT_EQ(
      error(R"({"ociVersion":"1","process":{"args":["a"]},"root":{"path":"r","readonly":"yes"}})"),
      "config.json: root.readonly must be true or false");
  EXPECT_EQ(
      error(
          R"({"ociVersion":"1","process":{"args":["a"],"rlimits":[{"type":1}]},"root":{"path":"r"}})"),
      "config.json: process.rlimits: unknown type \"\"");
  EXPECT_EQ(
      error(
          R"({"ociVersion":"1","process":{"args":["a"],"user":{"uid":4294967296}},"root":{"path":"r"}})"),
      "config.json: process.user.uid must be an integer from 0 to 4294967295");
  EXPECT_EQ(
      error(
          R"({"ociVersion":"1","process":{"args":["a"],"user":{"additionalGids":[4294967296]}},"root":{"path":"r"}})"),
      "config.json: process.user.additionalGids must be an integer from 0 to 4294967295");
}


static std::string with_linux(const std::string& linux_section, const std::string& process = "") {
  return R"({"ociVersion":"1.0.2","process":{"args":["a"])" + process +
         R"(},"root":{"path":"r"},"linux":)" + linux_section + "}";
}

TEST(OciSpecTest, ParsesMappingsDevicesPropagationOomScoreAndSwap) {
  auto spec = parse_spec_text(with_linux(R"({"namespaces":[{"type":"user"},{"type":"mount"}],
        "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
        "gidMappings":[{"containerID":0,"hostID":200000,"size":1000}],
        "devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":8630,"uid":0},
                   {"path":"/dev/pipe","type":"p"}],
        "rootfsPropagation":"rslave",
        "resources":{"memory":{"limit":1048576,"swap":-1}}})",
                                         R"(,"oomScoreAdj":-500)"),
                              "config.json");
  ASSERT_TRUE(spec) << spec.error().message;
  ASSERT_EQ(spec->uid_mappings.size(), 1u);
  EXPECT_EQ(spec->uid_mappings[0].host, 100000u);
  EXPECT_EQ(spec->gid_mappings.at(0).size, 1000u);
  ASSERT_EQ(spec->devices.size(), 2u);
  EXPECT_EQ(spec->devices[0].major, 10u);
  EXPECT_EQ(spec->devices[0].file_mode, 0666u);  // 8630 is S_IFCHR | 0666: the type bits go
  EXPECT_EQ(spec->devices[1].type, 'p');
  EXPECT_EQ(spec->rootfs_propagation, "rslave");
  EXPECT_EQ(spec->process.oom_score_adj, -500);
  EXPECT_EQ(spec->resources.memory_swap, -1);
}

TEST(OciSpecTest, BadNamespacesMappingsAndDevicesAreNamed) {
  auto error = [](const std::string& linux_section, const std::string& process = "") {
    auto spec = parse_spec_text(with_linux(linux_section, process), "config.json");
    return spec ? std::string("(accepted)") : spec.error().message;
  };
  EXPECT_EQ(error(R"({"namespaces":[{"type":"pid"},{"type":"pid"}]})"),
            "config.json: linux.namespaces names the pid namespace twice");
  EXPECT_EQ(error(R"({"namespaces":[{"type":"bogus"}]})"),
            "config.json: linux.namespaces: unknown namespace type \"bogus\"");
  EXPECT_EQ(error(R"({"namespaces":[{"type":"ipc","path":"relative"}]})"),
            "config.json: linux.namespaces: the ipc namespace path relative must be absolute");
  EXPECT_EQ(error(R"({"uidMappings":[{"containerID":0,"hostID":4294967295,"size":2}]})"),
            "config.json: linux.uidMappings: a mapping's size must be at least 1 and keep it "
            "within 32 bits");
  EXPECT_EQ(error(R"({"gidMappings":[{"containerID":0,"size":2}]})"),
            "config.json: linux.gidMappings: every mapping needs containerID, hostID and size");
  EXPECT_EQ(error(R"({"devices":[{"path":"/dev/x","type":"q"}]})"),
            "config.json: linux.devices: /dev/x has type \"q\"; it must be c, u, b or p");
  EXPECT_EQ(error(R"({"devices":[{"path":"/dev/x","type":"c"}]})"),
            "config.json: linux.devices /dev/x needs a major and a minor number");
  EXPECT_EQ(error(R"({"devices":[{"path":"/dev/../x","type":"p"}]})"),
            "config.json: linux.devices: /dev/../x must be an absolute path inside the container");
  EXPECT_EQ(error(R"({"rootfsPropagation":"sideways"})"),
            "config.json: linux.rootfsPropagation must be one of shared, slave, private, "
            "unbindable (or their r- forms)");
  EXPECT_EQ(error("{}", R"(,"oomScoreAdj":1001)"),
            "config.json: process.oomScoreAdj must be an integer from -1000 to 1000");
}

}  // namespace vessel::oci

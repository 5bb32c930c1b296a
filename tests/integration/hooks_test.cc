// OCI hooks: run on the host, when the spec says, with the container's state on stdin.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

// OCI hooks run on the host with the state on stdin: prestart and createRuntime at create,
// poststart after start, poststop after delete; a failing createRuntime hook fails create.
// `path` runs with `args` as its argv, args[0] included: busybox, like Docker's own prestart
// hook (dockerd re-executed as libnetwork-setkey), dispatches on it.
TEST_F(RuntimeTest, HooksRunOnTheHostWithTheStateOnStdin) {
  make_busybox_bundle(m_bundle, {"sleep", "1000"});
  std::string out = m_dir.path() + "/hooks";
  std::filesystem::create_directories(out);
  auto hook = [&](const std::string& name) {
    return nlohmann::json{{"path", "/bin/busybox"},
                          {"args", {"sh", "-c", "cat > " + out + "/" + name + ".json"}},
                          {"timeout", 10}};
  };
  std::ifstream in(m_bundle + "/config.json");
  auto config = nlohmann::json::parse(in);
  config["hooks"] = {{"prestart", {hook("prestart")}},
                     {"createRuntime", {hook("createRuntime")}},
                     {"poststart", {hook("poststart")}},
                     {"poststop", {hook("poststop")}}};
  config["annotations"] = {{"org.example.note", "carried to every hook"}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "hooked"}).exit_code, 0);
  EXPECT_EQ(read_json(vessel_cmd({"state", "hooked"}).out)["annotations"]["org.example.note"],
            "carried to every hook");
  auto seen = [&](const std::string& name) {
    std::ifstream file(out + "/" + name + ".json");
    return nlohmann::json::parse(file, nullptr, false);
  };
  for (const char* phase : {"prestart", "createRuntime"}) {
    auto state = seen(phase);
    ASSERT_TRUE(state.is_object()) << phase;
    EXPECT_EQ(state["id"], "hooked");
    EXPECT_EQ(state["status"], "created") << phase;
    EXPECT_GT(state["pid"].get<int>(), 0);
    EXPECT_EQ(state["bundle"], m_bundle);
  }
  EXPECT_FALSE(std::filesystem::exists(out + "/poststart.json"));
  ASSERT_EQ(vessel_cmd({"start", "hooked"}).exit_code, 0);
  EXPECT_EQ(seen("poststart")["status"], "running");
  ASSERT_EQ(vessel_cmd({"delete", "--force", "hooked"}).exit_code, 0);
  EXPECT_EQ(seen("poststop")["status"], "stopped");
  for (const char* phase : {"prestart", "createRuntime", "poststart", "poststop"})
    EXPECT_EQ(seen(phase)["annotations"]["org.example.note"], "carried to every hook") << phase;
  expect_nothing_left("hooked");

  config["hooks"] = {
      {"createRuntime", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo no; exit 3"}}}}}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto failed = vessel_cmd({"create", "--bundle", m_bundle, "refused"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_EQ(failed.err, "vessel: createRuntime hook /bin/sh failed with status 3: no\n");
  expect_nothing_left("refused");

  config["hooks"] = {{"createContainer", {hook("inside")}}};
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto inside = vessel_cmd({"create", "--bundle", m_bundle, "inside"});
  EXPECT_EQ(inside.exit_code, 1);
  EXPECT_EQ(inside.err,
            "vessel: hooks.createContainer must run in the container's namespaces, which are "
            "inside the VM: use createRuntime or poststart hooks, which run on the host\n");
  expect_nothing_left("inside");
}

}  // namespace vessel::test

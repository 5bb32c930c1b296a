// The fixture of tests that drive vessel on plain OCI bundles, as runc is driven: a state root
// and a bundle of the test's own, and a network namespace standing in for the one Podman makes.
#pragma once

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/harness.h"

namespace vessel::test {

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Like conmon: the shim that `vessel create` leaves behind becomes our child to reap.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    m_root = m_dir.path() + "/state";
    m_bundle = m_dir.path() + "/bundle";
  }

  CommandResult vessel_cmd(std::vector<std::string> args, const CommandOptions& options = {}) {
    args.insert(args.begin(), {vessel(), "--root", m_root});
    CommandOptions with_cwd = options;
    if (with_cwd.cwd.empty()) with_cwd.cwd = m_bundle;
    // The shim `create` leaves behind keeps create's stdout and stderr: read them through files.
    if (args[3] == "create") with_cwd.detach_output = true;
    return run(args, with_cwd);
  }

  void expect_nothing_left(const std::string& id) {
    EXPECT_EQ(processes_matching("vessel-" + id + " "), std::vector<std::string>{})
        << "a QEMU was left running";
    EXPECT_EQ(processes_matching(m_root + "/" + id), std::vector<std::string>{})
        << "a shim was left running";
    EXPECT_FALSE(std::filesystem::exists(m_root + "/" + id))
        << "the state directory was left behind";
  }

  std::string root_path() const { return m_root; }

  TempDir m_dir;
  std::string m_root;
  std::string m_bundle;
};

inline nlohmann::json read_json(const std::string& text) { return nlohmann::json::parse(text); }

// A network namespace with one interface, as Podman hands a container: the VM gets one card,
// so it can come from a template.
class NetworkNamespace {
 public:
  NetworkNamespace(const std::string& name, const std::string& host_end) : m_name(name) {
    // The veth's other end stays in the host's namespace (there is no dummy driver here).
    auto made =
        sh("ip netns del " + name + " 2>/dev/null; ip netns add " + name + " && ip link add " +
           host_end + " type veth peer name eth0 netns " + name + " && ip -n " + name +
           " addr add 10.231.0.2/24 dev eth0 && ip -n " + name + " link set eth0 up");
    EXPECT_EQ(made.exit_code, 0) << "network namespace " << name << ": " << made.err;
  }
  ~NetworkNamespace() { sh("ip netns del " + m_name); }
  std::string path() const { return "/run/netns/" + m_name; }
  std::string mac() const {
    return sh("ip netns exec " + m_name + " cat /sys/class/net/eth0/address").out;
  }

 private:
  std::string m_name;
};

// VMs restored from templates kept in the test's own directory (docs/templates.md), each
// container in a network namespace of its own.
class TemplateTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    m_templates = m_dir.path() + "/templates";
    m_config = m_dir.path() + "/templates.toml";
    std::ofstream(m_config) << "[runtime]\nenable_debug = true\n[factory]\ntemplate_path = \""
                            << m_templates << "\"\n";
    make_busybox_bundle(m_bundle, {"sleep", "1000"});
  }

  void TearDown() override {
    // A builder still at work would write into the test's directory after it is gone.
    for (int i = 0; i < 600 && !processes_matching("--build-template").empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Each container in a network namespace of its own, as Podman makes them.
  CommandResult create(const std::string& id) {
    // Named for this process: a namespace deleted by the test before is torn down by the kernel
    // in the background, and its veth's name stays taken for a while.
    static int made = 0;  // and numbered through the process: tests of one process run in turn
    std::string name = "vt" + std::to_string(::getpid() % 100000) + "-" + std::to_string(made++);
    m_netns[id] = std::make_unique<NetworkNamespace>(name, name + "-h");
    auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
    for (auto& ns : config["linux"]["namespaces"])
      if (ns["type"] == "network") ns["path"] = m_netns[id]->path();
    std::ofstream(m_bundle + "/config.json") << config.dump();
    return vessel_cmd({"create", "--bundle", m_bundle, id}, {.env = {{"VESSEL_CONFIG", m_config}}});
  }
  std::string shim_log(const std::string& id) {
    std::string log;
    std::getline(std::ifstream(m_root + "/" + id + "/shim.log"), log, '\0');
    return log;
  }
  std::vector<std::string> saved() {
    std::vector<std::string> found;
    if (std::filesystem::exists(m_templates))
      for (const auto& entry : std::filesystem::directory_iterator(m_templates))
        if (entry.path().extension() == ".vm") found.push_back(entry.path());
    return found;
  }
  // The first container of a shape boots, and its create starts the builder.
  std::string wait_for_template() {
    for (int i = 0; i < 900 && saved().empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (saved().empty()) {
      std::string log;
      std::getline(std::ifstream(m_templates + "/builder.log"), log, '\0');
      ADD_FAILURE() << "no template after 90 s; builder.log:\n"
                    << log << "\nbuilders: " << processes_matching("--build-template").size();
      return "";
    }
    return saved()[0];
  }
  static size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
      ++n;
    return n;
  }

  std::map<std::string, std::unique_ptr<NetworkNamespace>> m_netns;
  std::string m_templates;
  std::string m_config;
};

}  // namespace vessel::test

// Pods from plain bundles with containerd's CRI annotations: a sandbox and its members in one VM.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

// The pod of issue 9 from plain bundles, as containerd's CRI plugin writes them: a sandbox and
// two members naming it (io.kubernetes.cri.container-type / sandbox-id), the members' network,
// ipc and uts namespaces given as the sandbox's paths, driven with vessel create/start/kill/delete.
TEST_F(RuntimeTest, CriAnnotatedBundlesMakeOnePodVm) {
  std::filesystem::create_directories(m_bundle);  // where the commands run
  auto bundle = [&](const std::string& name, const std::vector<std::string>& args,
                    const nlohmann::json& annotations, pid_t sandbox) {
    std::string dir = m_dir.path() + "/" + name;
    make_busybox_bundle(dir, args);
    std::ifstream in(dir + "/config.json");
    auto config = nlohmann::json::parse(in);
    config["annotations"] = annotations;
    if (sandbox > 0) {
      config.erase("hostname");
      std::string ns = "/proc/" + std::to_string(sandbox) + "/ns/";
      config["linux"]["namespaces"] = {{{"type", "pid"}},
                                       {{"type", "mount"}},
                                       {{"type", "network"}, {"path", ns + "net"}},
                                       {{"type", "ipc"}, {"path", ns + "ipc"}},
                                       {{"type", "uts"}, {"path", ns + "uts"}}};
    } else {
      config["hostname"] = "cri-pod";
    }
    std::ofstream(dir + "/config.json") << config.dump();
    return dir;
  };
  auto member_of = [](const std::string& sandbox) {
    return nlohmann::json{{"io.kubernetes.cri.container-type", "container"},
                          {"io.kubernetes.cri.sandbox-id", sandbox}};
  };
  std::string sandbox_dir = bundle(
      "sandbox", {"sleep", "1000"},
      {{"io.kubernetes.cri.container-type", "sandbox"}, {"io.kubernetes.cri.sandbox-id", "cri-sb"}},
      0);
  ASSERT_EQ(vessel_cmd({"create", "--bundle", sandbox_dir, "cri-sb"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "cri-sb"}).exit_code, 0);
  pid_t sandbox = read_json(vessel_cmd({"state", "cri-sb"}).out)["pid"];

  std::string a_dir =
      bundle("a", {"sh", "-c", "echo served-by-a > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"},
             member_of("cri-sb"), sandbox);
  auto created = vessel_cmd({"create", "--bundle", a_dir, "cri-a"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(read_json(vessel_cmd({"state", "cri-a"}).out)["status"], "created");
  ASSERT_EQ(vessel_cmd({"start", "cri-a"}).exit_code, 0);
  EXPECT_EQ(read_json(vessel_cmd({"state", "cri-a"}).out)["status"], "running");

  // B reports into its own root filesystem, which the host reads back.
  std::string b_dir = bundle(
      "b",
      {"sh", "-c",
       "for i in $(seq 50); do wget -qO /tmp/page http://127.0.0.1:8080/index.html && break; "
       "sleep 0.2; done; { cat /tmp/page; hostname; cat /proc/1/comm; "
       "cat /proc/sys/kernel/random/boot_id; ls /tmp; } > /tmp/report; exit 3"},
      member_of("cri-sb"), sandbox);
  ASSERT_EQ(vessel_cmd({"create", "--bundle", b_dir, "cri-b"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "cri-b"}).exit_code, 0);
  auto status_of_b = [&] { return read_json(vessel_cmd({"state", "cri-b"}).out)["status"]; };
  for (int i = 0; i < 300 && status_of_b() != "stopped"; ++i) ::usleep(100000);
  EXPECT_EQ(status_of_b(), "stopped");
  std::ifstream report_file(b_dir + "/rootfs/tmp/report");
  std::stringstream report;
  report << report_file.rdbuf();
  auto boot_a = vessel_cmd({"exec", "cri-a", "cat", "/proc/sys/kernel/random/boot_id"}).out;
  EXPECT_EQ(report.str(), "served-by-a\ncri-pod\nsh\n" + boot_a + "page\nreport\n")
      << "B reaches A on 127.0.0.1, has the pod's hostname, its own pid namespace and root, "
         "and runs on the same guest boot";
  wait_for_template_builders();
  EXPECT_EQ(processes_matching("qemu-system").size(), 1u);

  // A member goes; the pod's VM stays for the others.
  ASSERT_EQ(vessel_cmd({"delete", "cri-b"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"kill", "cri-a", "KILL"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "cri-a"}).exit_code, 0);
  EXPECT_EQ(read_json(vessel_cmd({"state", "cri-sb"}).out)["status"], "running");
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-a"));

  // A member must name its own pod's namespaces, and a pod that exists.
  std::string stray = bundle("stray", {"true"}, member_of("cri-sb"), sandbox);
  {
    std::ifstream in(stray + "/config.json");
    auto config = nlohmann::json::parse(in);
    config["linux"]["namespaces"][3]["path"] = "/proc/self/ns/ipc";
    std::ofstream(stray + "/config.json") << config.dump();
  }
  auto stray_result = vessel_cmd({"create", "--bundle", stray, "cri-stray"});
  EXPECT_EQ(stray_result.err,
            "vessel: linux.namespaces: /proc/self/ns/ipc is not the ipc namespace of the pod's "
            "sandbox cri-sb: a pod member can only share its own pod's\n");
  std::string orphan = bundle("orphan", {"true"}, member_of("no-such-sandbox"), sandbox);
  auto orphan_result = vessel_cmd({"create", "--bundle", orphan, "cri-orphan"});
  EXPECT_NE(orphan_result.err.find("the pod's sandbox no-such-sandbox is not a vessel container"),
            std::string::npos)
      << orphan_result.err;
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-stray"));
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-orphan"));

  // The guest can write in the pod shares' roots: a name it made ahead of a member (here made
  // from the host in QEMU's namespace, as the guest would through 9p) must not steer the
  // member's mount elsewhere in QEMU's jail.
  std::string qemu = run({"pgrep", "-f", "qemu-system.*vessel-cri-sb "}).out;
  std::string in_qemu = "nsenter -t " + qemu.substr(0, qemu.find('\n')) + " -m ";
  EXPECT_EQ(sh(in_qemu + "ln -s /usr /vessel/pod/pod-roots/cri-steered").exit_code, 0);
  std::string steered = bundle("steered", {"true"}, member_of("cri-sb"), sandbox);
  auto steered_result = vessel_cmd({"create", "--bundle", steered, "cri-steered"});
  EXPECT_EQ(steered_result.exit_code, 1);
  EXPECT_NE(steered_result.err.find("opening the mount point cri-steered"), std::string::npos)
      << steered_result.err;
  EXPECT_EQ(sh(in_qemu + "test -e /usr/bin/qemu-system-x86_64").exit_code, 0)
      << "the member's root was mounted over the jail's /usr";

  // The sandbox's end is the VM's: a member still running stops with it, and goes cleanly.
  std::string c_dir = bundle("c", {"sleep", "1000"}, member_of("cri-sb"), sandbox);
  ASSERT_EQ(vessel_cmd({"create", "--bundle", c_dir, "cri-c"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "cri-c"}).exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "cri-sb"}).exit_code, 0);
  auto status_of_c = [&] { return read_json(vessel_cmd({"state", "cri-c"}).out)["status"]; };
  for (int i = 0; i < 100 && status_of_c() != "stopped"; ++i) ::usleep(100000);
  EXPECT_EQ(status_of_c(), "stopped");
  EXPECT_EQ(vessel_cmd({"delete", "cri-c"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(root_path() + "/cri-c"));
  expect_nothing_left("cri-sb");
}

}  // namespace vessel::test

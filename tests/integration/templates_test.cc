// VMs restored from templates (docs/templates.md): each clone its own, an untrusted or broken
// template never loaded, and what an idle restored VM costs against a bare QEMU.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/bare_restore.h"
#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

namespace {

// How many pages of QEMU's guest RAM (its anonymous mapping of `mib` MiB) are mapped at all,
// even to the kernel's shared zero page: what QEMU's restore and the guest have touched.
size_t guest_pages_present(const std::string& pid, size_t mib) {
  std::ifstream maps("/proc/" + pid + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, device, inode, path;
    fields >> range >> perms >> offset >> device >> inode >> path;
    uint64_t start = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    uint64_t end = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    if (end - start != mib << 20 || !path.empty()) continue;
    std::ifstream pagemap("/proc/" + pid + "/pagemap", std::ios::binary);
    pagemap.seekg(static_cast<std::streamoff>(start / 4096 * 8));
    std::vector<uint64_t> entries((end - start) / 4096);
    pagemap.read(reinterpret_cast<char*>(entries.data()),
                 static_cast<std::streamsize>(entries.size() * 8));
    return static_cast<size_t>(
        std::count_if(entries.begin(), entries.end(), [](uint64_t e) { return e >> 63; }));
  }
  return SIZE_MAX;
}

}  // namespace

TEST_F(TemplateTest, ContainersRestoredFromOneTemplateDrawTheirOwnRandomBytesAndTheHostsTime) {
  ASSERT_EQ(create("booted").exit_code, 0);
  EXPECT_EQ(shim_log("booted").find("from the template"), std::string::npos) << "none yet";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "booted"}).exit_code, 0);
  ASSERT_NE(wait_for_template(), "") << "no template was made in the background";

  std::map<std::string, std::string> random, boot_id;
  for (std::string id : {"clone-a", "clone-b"}) {
    auto created = create(id);
    ASSERT_EQ(created.exit_code, 0) << created.err;
    ASSERT_EQ(vessel_cmd({"start", id}).exit_code, 0);
    EXPECT_NE(shim_log(id).find("QEMU started from the template " + saved()[0]), std::string::npos)
        << shim_log(id);
    auto drawn = vessel_cmd({"exec", id, "sh", "-c",
                             "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; "
                             "date +%s; cat /proc/sys/kernel/random/boot_id; "
                             "cat /sys/class/net/eth0/address"});
    ASSERT_EQ(drawn.exit_code, 0) << drawn.err;
    std::istringstream lines(drawn.out);
    std::string bytes, time, boot, mac;
    std::getline(lines, bytes);
    std::getline(lines, time);
    std::getline(lines, boot);
    std::getline(lines, mac);
    EXPECT_EQ(bytes.size(), 64u) << drawn.out;
    random[id] = bytes;
    boot_id[id] = boot;
    // The guest's clock is the host's, not the template's.
    EXPECT_NEAR(std::stoll(time), static_cast<long long>(::time(nullptr)), 3) << drawn.out;
    // Its card has the MAC of the interface it stands in for, not the template's.
    EXPECT_EQ(mac + "\n", m_netns[id]->mac());
  }
  EXPECT_NE(random["clone-a"], random["clone-b"]) << "two clones drew the same random bytes";
  EXPECT_NE(boot_id["clone-a"], boot_id["clone-b"]);
  for (std::string id : {"clone-a", "clone-b"}) {
    ASSERT_EQ(vessel_cmd({"delete", "--force", id}).exit_code, 0);
    expect_nothing_left(id);
  }
}

TEST_F(TemplateTest, ATemplateThatIsNotTheUsersOwnIsNeverLoaded) {
  // A template is guest memory and device state that QEMU loads unchecked: a file another user
  // could have written or swapped is refused with one line, and the container boots.
  ASSERT_EQ(create("first").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "first"}).exit_code, 0);
  const std::string saved_file = wait_for_template();
  ASSERT_NE(saved_file, "");
  auto refused = [&](const std::string& id, const std::string& why) {
    auto created = create(id);
    ASSERT_EQ(created.exit_code, 0) << created.err;
    std::string log = shim_log(id);
    EXPECT_EQ(count(log, why + ": not trusted, booting instead"), 1u) << log;
    EXPECT_EQ(count(log, " warning "), 1u + count(log, "running the VM under TCG emulation"))
        << log;
    EXPECT_EQ(log.find("from the template"), std::string::npos) << log;
    EXPECT_EQ(vessel_cmd({"start", id}).exit_code, 0);
    EXPECT_EQ(vessel_cmd({"exec", id, "echo", "alive"}).out, "alive\n");
    ASSERT_EQ(vessel_cmd({"delete", "--force", id}).exit_code, 0);
    expect_nothing_left(id);
    wait_for_template_builders();  // the builder each create starts makes a trusted one anew
  };
  const std::string user = std::to_string(::geteuid());

  ASSERT_EQ(::chown(saved_file.c_str(), 4242, 4242), 0);  // planted by another user
  refused("planted", "the template " + saved_file + " is not a regular file of " + user +
                         " with one link and mode 0600 (owner 4242, 1 links, mode 0600)");

  const std::string held = m_dir.path() + "/held.vm";  // a name someone else may write through
  ASSERT_EQ(::link(saved_file.c_str(), held.c_str()), 0);
  refused("linked", "the template " + saved_file + " is not a regular file of " + user +
                        " with one link and mode 0600 (owner " + user + ", 2 links, mode 0600)");
  ::unlink(held.c_str());

  ASSERT_EQ(::chmod(m_templates.c_str(), 0770), 0);  // a group may write in the directory
  refused("shared", "the template directory " + m_templates + " has owner " + user +
                        " and mode 0770, not " + user + " and 0700");

  const std::string real = m_templates + ".real";  // the directory a link to another
  ASSERT_EQ(::rename(m_templates.c_str(), real.c_str()), 0);
  ASSERT_EQ(::symlink(real.c_str(), m_templates.c_str()), 0);
  refused("symlinked", "the template directory " + m_templates + " is a link or no directory");
  ASSERT_EQ(::unlink(m_templates.c_str()), 0);
  ASSERT_EQ(::rename(real.c_str(), m_templates.c_str()), 0);

  // The user's own again: restored.
  ASSERT_EQ(create("trusted").exit_code, 0);
  EXPECT_NE(shim_log("trusted").find("from the template"), std::string::npos)
      << shim_log("trusted");
  ASSERT_EQ(vessel_cmd({"delete", "--force", "trusted"}).exit_code, 0);
}

TEST_F(TemplateTest, ACorruptedOrStaleTemplateFallsBackToABootWithOneLogLine) {
  ASSERT_EQ(create("first").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "first"}).exit_code, 0);
  std::string saved_file = wait_for_template();
  ASSERT_NE(saved_file, "");
  auto works = [&](const std::string& id) {
    EXPECT_EQ(vessel_cmd({"start", id}).exit_code, 0);
    EXPECT_EQ(vessel_cmd({"exec", id, "echo", "alive"}).out, "alive\n");
    ASSERT_EQ(vessel_cmd({"delete", "--force", id}).exit_code, 0);
    expect_nothing_left(id);
  };

  // Cut short, as by a full disk: QEMU cannot load it.
  std::filesystem::resize_file(saved_file, std::filesystem::file_size(saved_file) / 2);
  auto created = create("truncated");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string log = shim_log("truncated");
  EXPECT_EQ(count(log, "could not be restored"), 1u) << log;
  // The template's line alone, beside TCG's on a host whose KVM cannot run the guest.
  EXPECT_EQ(count(log, " warning "), 1u + count(log, "running the VM under TCG emulation")) << log;
  works("truncated");
  EXPECT_NE(wait_for_template(), "") << "the broken template is made anew";

  // Saved for another VM (an older guest image, another QEMU): never loaded.
  std::string text;
  std::getline(std::ifstream(saved_file), text, '\0');
  std::ofstream(saved_file) << "vessel-template \"another VM\"\n"
                            << text.substr(text.find('\n') + 1);
  ASSERT_EQ(create("stale").exit_code, 0);
  log = shim_log("stale");
  EXPECT_EQ(count(log, "was saved for another VM"), 1u) << log;
  EXPECT_EQ(log.find("from the template"), std::string::npos) << log;
  works("stale");
}

// What an idle container costs the host, QEMU and shim together, read as PSS: a bound, not a
// timing, and a ratio to a bare QEMU restoring the same template in the same test (an absolute
// figure moves with the host's kernel and QEMU's libraries). vessel held 86 MiB against the bare
// QEMU's 65.5 MiB (1.31) after templates, huge pages off, the 16 MiB TCG cache and shorter
// virtio-mmio queues (issue 10; docs/benchmarks.md has the breakdown).
TEST_F(TemplateTest, AnIdleRestoredVmStaysWithinItsMemoryBound) {
  constexpr double kBoundRatio = 1.5;
  ASSERT_EQ(create("first").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"delete", "--force", "first"}).exit_code, 0);
  std::string saved = wait_for_template();
  ASSERT_NE(saved, "");
  ASSERT_EQ(create("idle").exit_code, 0);
  ASSERT_EQ(vessel_cmd({"start", "idle"}).exit_code, 0);
  ASSERT_NE(shim_log("idle").find("from the template"), std::string::npos);
  std::string shim = read_json(vessel_cmd({"state", "idle"}).out)["pid"].dump();
  auto qemu = processes_matching("-name vessel-idle ");
  ASSERT_EQ(qemu.size(), 1u);
  std::string qemu_pid = qemu[0].substr(0, qemu[0].find(':'));
  BareRestore bare_qemu(qemu_pid, saved);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // past the start, idle; bare restored
  size_t total = pss_kib(shim) + pss_kib(qemu_pid);
  size_t bare = bare_qemu.pss();
  std::cout << "idle restored VM: QEMU + shim " << total << " KiB, a bare QEMU restoring the same "
            << "template " << bare << " KiB\n";
  EXPECT_GT(total, 0u);
  ASSERT_GT(bare, 0u) << "the bare QEMU did not run";
  EXPECT_LE(static_cast<double>(total), kBoundRatio * static_cast<double>(bare))
      << "QEMU " << pss_kib(qemu_pid) << " KiB, shim " << pss_kib(shim) << " KiB, bare QEMU "
      << bare << " KiB";
  // Huge pages would hold 2 MiB for each 4 KiB page the restored guest touches.
  std::ifstream smaps("/proc/" + qemu_pid + "/smaps_rollup");
  std::string text((std::istreambuf_iterator<char>(smaps)), {});
  EXPECT_NE(text.find("AnonHugePages:         0 kB"), std::string::npos) << text;
  // The template leaves out the free memory the guest's balloon hinted while it was saved, so
  // a restore never maps it (not even to the zero page, a fault for each): of 256 MiB, the
  // guest's own ~27 MiB and the free blocks too small to hint (~48 MiB in all here), where a
  // stream holding every page would map all of them.
  size_t present = guest_pages_present(qemu_pid, 256);
  ASSERT_NE(present, SIZE_MAX) << "no 256 MiB mapping of guest RAM in QEMU";
  EXPECT_LT(present, (256u << 20) / 4096 / 2) << present << " of the guest's pages are mapped";
  ASSERT_EQ(vessel_cmd({"delete", "--force", "idle"}).exit_code, 0);
  expect_nothing_left("idle");
}

}  // namespace vessel::test

#include "shim/template.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>

#include "common/base64.h"
#include "common/channel/messages.h"

namespace vessel::shim {

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/vessel-template-test.XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  std::string file(const std::string& name, const std::string& content) const {
    std::ofstream(path + "/" + name) << content;
    return path + "/" + name;
  }
};

// A template file as the builder leaves it: the user's own, mode 0600.
void write_template(const std::string& path, const std::string& content) {
  std::ofstream(path) << content;
  ::chmod(path.c_str(), 0600);
}

std::string header_for(const std::string& key) {
  return "vessel-template " + nlohmann::json(key).dump() + "\nQEVM";
}

hypervisor::VmConfig container_vm(const TempDir& dir) {
  hypervisor::VmConfig vm;
  vm.name = "vessel-abc";
  vm.hypervisor_path = dir.file("qemu", "binary");
  vm.kernel = dir.file("vmlinux", "kernel");
  vm.initrd = dir.file("initrd", "initrd");
  vm.accel = hypervisor::Accel::Tcg;
  vm.tsc_khz = 2100000;
  vm.shares = {{"rootfs", "/var/lib/containers/x/merged", false}};
  vm.files = {{"/run/x/hosts", false, -1}};
  vm.pod_shares = {{channel::kPodRootsTag, hypervisor::Ownership::Host},
                   {channel::kPodVolumesTag, hypervisor::Ownership::Guarded}};
  vm.nics = {{7, "02:00:00:00:00:01"}};
  vm.agent_fd = 3;
  return vm;
}

}  // namespace

TEST(TemplateTest, AVmWithOneCardComesFromATemplateWhateverItsVolumes) {
  TempDir dir;
  auto vm = container_vm(dir);
  auto shape = template_shape(vm);
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->nics.size(), 1u);
  EXPECT_EQ(shape->nics[0].tap_fd, -1) << "the template's card has no backend";
  EXPECT_TRUE(shape->files.empty());
  EXPECT_EQ(shape->agent_fd, -1);

  // Volumes are entries of the pod volume share, bound by QEMU's jail: no device of their own.
  auto with_volume = vm;
  with_volume.pod_entries = {{channel::kPodVolumesTag, "@0", "/srv", false, 9}};
  ASSERT_TRUE(template_shape(with_volume));
  EXPECT_EQ(*template_key(*template_shape(with_volume)), *template_key(*shape));
  auto another_share = vm;
  another_share.shares.push_back({"extra", "/srv", false, hypervisor::Ownership::Guarded});
  EXPECT_FALSE(template_shape(another_share)) << "a device the template does not have";
  auto no_network = vm;
  no_network.nics.clear();
  EXPECT_FALSE(template_shape(no_network)) << "--network=none has no card to hide";
}

TEST(TemplateTest, TheKeyHoldsWhatShapesTheVmAndNothingOfTheContainer) {
  TempDir dir;
  auto vm = container_vm(dir);
  std::string key = *template_key(*template_shape(vm));
  // Another container with the same shape: the same template.
  auto other = vm;
  other.name = "vessel-def";
  other.shares[0].host_path = "/elsewhere";
  other.files = {};
  other.nics = {{9, "02:00:00:00:00:02"}};
  EXPECT_EQ(*template_key(*template_shape(other)), key);
  // What the saved VM depends on changes the key.
  for (auto change : {+[](hypervisor::VmConfig& v) { v.memory_mib = 512; },
                      +[](hypervisor::VmConfig& v) { v.vcpus = 2; },
                      +[](hypervisor::VmConfig& v) { v.accel = hypervisor::Accel::Kvm; },
                      +[](hypervisor::VmConfig& v) { v.kernel_params = "debug"; },
                      +[](hypervisor::VmConfig& v) { v.machine_type = "q35"; },
                      +[](hypervisor::VmConfig& v) { v.shares[0].readonly = true; }}) {
    auto changed = vm;
    change(changed);
    EXPECT_NE(*template_key(*template_shape(changed)), key);
  }
  // So does a rebuilt guest kernel: its identity is part of the key.
  dir.file("vmlinux", "another kernel");
  EXPECT_NE(*template_key(*template_shape(vm)), key);
}

TEST(TemplateTest, ATemplateSavedForAnotherKeyIsStaleAndAMissingOneIsAbsent) {
  TempDir dir;
  auto vm = container_vm(dir);
  std::string key = *template_key(*template_shape(vm));
  auto missing = open_template(dir.path, key);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  // A file under the key's name whose first line names another key.
  std::string path = template_file(dir.path, key);
  write_template(path, "vessel-template \"another key\"\nQEVM");
  auto stale = open_template(dir.path, key);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ESTALE);
  // The right key: the descriptor is at QEMU's stream.
  write_template(path, header_for(key));
  auto opened = open_template(dir.path, key);
  ASSERT_TRUE(opened) << opened.error().message;
  char magic[5] = {};
  ASSERT_EQ(::read(opened->get(), magic, 4), 4);
  EXPECT_STREQ(magic, "QEVM");
}

TEST(TemplateTest, OnlyTheUsersOwnFileInTheUsersPrivateDirectoryIsOpened) {
  TempDir dir;
  auto vm = container_vm(dir);
  std::string key = *template_key(*template_shape(vm));
  std::string path = template_file(dir.path, key);
  write_template(path, header_for(key));
  ASSERT_TRUE(open_template(dir.path, key));
  auto refused = [&](const char* what) {
    auto opened = open_template(dir.path, key);
    EXPECT_FALSE(opened) << what;
    if (!opened) {
      EXPECT_EQ(opened.error().code, EPERM) << what << ": " << opened.error().message;
    }
  };
  ::chmod(path.c_str(), 0644);
  refused("a file others may read");
  ::chmod(path.c_str(), 0600);
  ::chmod(dir.path.c_str(), 0755);
  refused("a directory others may enter");
  ::chmod(dir.path.c_str(), 0700);
  ASSERT_EQ(::link(path.c_str(), (path + ".second").c_str()), 0);
  refused("a second link");
  ::rename((path + ".second").c_str(), (dir.path + "/elsewhere").c_str());
  ::unlink(path.c_str());
  ASSERT_EQ(::symlink((dir.path + "/elsewhere").c_str(), path.c_str()), 0);
  refused("a symbolic link");
  ::unlink(path.c_str());
  ::rename((dir.path + "/elsewhere").c_str(), path.c_str());
  ASSERT_TRUE(open_template(dir.path, key)) << "the user's own again";
}

TEST(TemplateTest, TemplatesOfAGuestImageThatChangedAreRemoved) {
  TempDir dir;
  auto vm = container_vm(dir);
  std::string old_key = *template_key(*template_shape(vm));
  write_template(template_file(dir.path, old_key), header_for(old_key));
  auto bigger = vm;
  bigger.memory_mib = 1024;
  std::string other_key = *template_key(*template_shape(bigger));
  write_template(template_file(dir.path, other_key), header_for(other_key));
  remove_stale_templates(dir.path);
  EXPECT_TRUE(open_template(dir.path, old_key)) << "both are current";
  EXPECT_TRUE(open_template(dir.path, other_key));
  dir.file("vmlinux", "a rebuilt kernel");
  remove_stale_templates(dir.path);
  EXPECT_EQ(open_template(dir.path, old_key).error().code, ENOENT);
  EXPECT_EQ(open_template(dir.path, other_key).error().code, ENOENT);
}

TEST(TemplateTest, BuildersLocksAreRemovedOnceNoBuilderHoldsThem) {
  TempDir dir;
  std::string done = dir.file("0123456789abcdef.lock", "");
  std::string held = dir.file("fedcba9876543210.lock", "");
  UniqueFd holder(::open(held.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(holder);
  ASSERT_EQ(::flock(holder.get(), LOCK_EX), 0);  // a builder at work
  remove_stale_templates(dir.path);
  EXPECT_NE(::access(done.c_str(), F_OK), 0);
  EXPECT_EQ(::access(held.c_str(), F_OK), 0);
}

TEST(TemplateTest, EachResumeCarriesItsOwnEntropyAndTheCardsMacsAndTheClockTheTimeNow) {
  TempDir dir;
  auto vm = container_vm(dir);
  auto first = resume_message(vm);
  auto second = resume_message(vm);
  EXPECT_EQ(first.entropy.size(), 64u);
  EXPECT_NE(first.entropy, second.entropy);
  EXPECT_EQ(first.macs, std::vector<std::string>{"02:00:00:00:00:01"});
  auto wire = nlohmann::json::parse(channel::encode(first));
  EXPECT_EQ(wire["type"], "resume");
  EXPECT_FALSE(wire.contains("realtime_ns")) << "the time goes once the guest runs";
  auto clock = clock_message();
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  EXPECT_NEAR(clock.realtime_ns / 1000000000, now.tv_sec, 1);
}

}  // namespace vessel::shim

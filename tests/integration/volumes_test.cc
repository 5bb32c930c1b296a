// Bind mounts and volumes: a source reached through a symlink, and a volume an older vessel
// wrote, named at create and migrated with `vessel migrate-volume`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "support/harness.h"
#include "support/runtime_fixture.h"

namespace vessel::test {

// A bind source is opened once, and never through a symlink in its last component.
// A bind source that is a symlink shares what it points to, as mount(2) does for runc (Podman's
// --init binds /usr/libexec/podman/catatonit, a symlink).
TEST_F(RuntimeTest, BindSourceThatIsASymlinkSharesItsTarget) {
  make_busybox_bundle(m_bundle, {"sh", "-c", "echo through-the-link > /data/written"});
  std::filesystem::create_directories(m_dir.path() + "/volume");
  std::filesystem::create_directory_symlink(m_dir.path() + "/volume", m_dir.path() + "/link");
  std::ifstream in(m_bundle + "/config.json");
  auto config = nlohmann::json::parse(in);
  config["mounts"].push_back({{"destination", "/data"},
                              {"type", "bind"},
                              {"source", m_dir.path() + "/link"},
                              {"options", {"rbind"}}});
  std::ofstream(m_bundle + "/config.json") << config.dump();
  auto result = vessel_cmd({"run", "linked"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::string written;
  std::getline(std::ifstream(m_dir.path() + "/volume/written"), written);
  EXPECT_EQ(written, "through-the-link");
  expect_nothing_left("linked");
}

// A volume as vessel wrote it before volumes kept the guest's owners (QEMU's mapped-xattr model):
// every file root's, mode 0600, its owner, mode and type in user.virtfs.* attributes. A container
// given it says so in one line; `vessel migrate-volume` makes the files what the attributes say,
// but no setuid file and no device node.
TEST_F(RuntimeTest, AVolumeAnOlderVesselWroteIsNamedAndMigratedWithOneCommand) {
  const std::string volume = m_dir.path() + "/old-volume";
  std::filesystem::create_directories(volume + "/sub");
  auto mapped = [&](const std::string& name, uint32_t mode, uint32_t uid, const std::string& text) {
    std::string path = volume + "/" + name;
    if (!S_ISDIR(mode)) std::ofstream(path) << text;
    ::chmod(path.c_str(), S_ISDIR(mode) ? 0700 : 0600);
    for (auto [key, value] :
         {std::pair{"user.virtfs.mode", mode}, std::pair{"user.virtfs.uid", uid},
          std::pair{"user.virtfs.gid", uid + 1}}) {
      unsigned char bytes[4] = {
          static_cast<unsigned char>(value), static_cast<unsigned char>(value >> 8),
          static_cast<unsigned char>(value >> 16), static_cast<unsigned char>(value >> 24)};
      if (::setxattr(path.c_str(), key, bytes, 4, 0) < 0) return errno;
    }
    return 0;
  };
  if (mapped("sub", S_IFDIR | 0750, 42, "") == ENOTSUP)
    GTEST_SKIP() << "the file system under " << m_dir.path() << " takes no user.* attributes";
  ASSERT_EQ(mapped("sub/app", S_IFREG | 04755, 1234, "app"), 0);
  ASSERT_EQ(mapped("link", S_IFLNK | 0777, 1000, "sub/app"), 0);
  ASSERT_EQ(mapped("null", S_IFCHR | 0666, 0, ""), 0);
  ASSERT_EQ(mapped("pipe", S_IFIFO | 0640, 1000, ""), 0);

  make_busybox_bundle(m_bundle,
                      {"sh", "-c", "cd /v && stat -c '%n %u %g %a %F' sub sub/app link pipe"});
  auto config = nlohmann::json::parse(std::ifstream(m_bundle + "/config.json"));
  config["mounts"].push_back(
      {{"destination", "/v"}, {"type", "bind"}, {"source", volume}, {"options", {"rbind"}}});
  std::ofstream(m_bundle + "/config.json") << config.dump();
  ASSERT_EQ(vessel_cmd({"create", "--bundle", m_bundle, "old"}).exit_code, 0);
  std::string log;
  std::getline(std::ifstream(m_root + "/old/shim.log"), log, '\0');
  EXPECT_NE(log.find(volume +
                     " keeps its files' owners in user.virtfs.* attributes, as vessel "
                     "wrote volumes before: the container sees the host's owners; as root, "
                     "`vessel migrate-volume " +
                     volume + "` gives each file its own"),
            std::string::npos)
      << log;
  ASSERT_EQ(vessel_cmd({"delete", "--force", "old"}).exit_code, 0);

  auto migrated = vessel_cmd({"migrate-volume", volume});
  EXPECT_EQ(migrated.exit_code, 0) << migrated.err;
  EXPECT_EQ(migrated.out, volume +
                              ": 5 files given the owner, group and mode containers gave "
                              "them; 1 setuid or setgid bits dropped; 1 devices or sockets "
                              "left plain files\n");
  auto seen = vessel_cmd({"run", "migrated"});
  EXPECT_EQ(seen.exit_code, 0) << seen.err;
  EXPECT_EQ(seen.out,
            "sub 42 43 750 directory\nsub/app 1234 1235 755 regular file\n"
            "link 1000 1001 777 symbolic link\npipe 1000 1001 640 fifo\n");
  struct stat null {};
  ASSERT_EQ(::lstat((volume + "/null").c_str(), &null), 0);
  EXPECT_TRUE(S_ISREG(null.st_mode)) << "a device node reached the host";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(volume)) {
    char names[256];
    EXPECT_LE(::llistxattr(entry.path().c_str(), names, sizeof names), 0) << entry.path();
  }
  EXPECT_EQ(vessel_cmd({"migrate-volume", volume}).out,
            volume +
                ": 0 files given the owner, group and mode containers gave them; 0 setuid "
                "or setgid bits dropped; 0 devices or sockets left plain files\n");
  expect_nothing_left("migrated");
}

}  // namespace vessel::test

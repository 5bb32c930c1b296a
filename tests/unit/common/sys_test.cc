#include "common/sys.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "common/capped_file.h"

namespace vessel {

namespace {
struct ScratchDir {
  ScratchDir() {
    char name[] = "/tmp/vessel-sys-test.XXXXXX";
    path = ::mkdtemp(name);
  }
  ~ScratchDir() { (void)sys::remove_tree(path); }
  std::string path;
};

size_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
}
}  // namespace

TEST(SysTest, AtomicWritesNeverFollowAPlantedSymlink) {
  ScratchDir dir;
  std::string victim = dir.path + "/victim";
  ASSERT_TRUE(sys::write_file_atomic(victim, "precious"));
  // Somebody plants the temporary name as a link to the victim: the write must not go through it.
  ASSERT_EQ(::symlink(victim.c_str(), (dir.path + "/state.json.tmp").c_str()), 0);
  ASSERT_TRUE(sys::write_file_atomic(dir.path + "/state.json", "new"));
  EXPECT_EQ(sys::read_file(victim).value(), "precious");
  EXPECT_EQ(sys::read_file(dir.path + "/state.json").value(), "new");
}

TEST(SysTest, PrivateDirIsCreated0700AndTightenedWhenOurs) {
  ScratchDir dir;
  std::string root = dir.path + "/a/vessel";
  ASSERT_TRUE(sys::make_private_dir(root));
  struct stat st;
  ASSERT_EQ(::stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ::chmod(root.c_str(), 0777);
  ASSERT_TRUE(sys::make_private_dir(root));
  ASSERT_EQ(::stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(SysTest, PrivateDirRefusesASymlinkOrAnotherOwner) {
  ScratchDir dir;
  std::string link = dir.path + "/link";
  ASSERT_EQ(::symlink(dir.path.c_str(), link.c_str()), 0);
  auto linked = sys::make_private_dir(link);
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().message, link +
                                        " is not a directory (a symlink or a file is in its "
                                        "place): remove it, or choose another --root");
  std::string foreign = dir.path + "/foreign";
  ASSERT_EQ(::mkdir(foreign.c_str(), 0700), 0);
  ASSERT_EQ(::chown(foreign.c_str(), 4242, 4242), 0);
  auto owned = sys::make_private_dir(foreign);
  ASSERT_FALSE(owned);
  EXPECT_EQ(owned.error().message, foreign + " belongs to uid 4242, not to you (uid " +
                                       std::to_string(::geteuid()) +
                                       "): remove it, or choose another --root");
}

TEST(CappedFileTest, KeepsTheNewestOutputUnderTheCap) {
  ScratchDir dir;
  UniqueFd fd = sys::open(dir.path, O_PATH | O_DIRECTORY).value();
  CappedFile file = CappedFile::create(fd.get(), "console.log", 1000).value();
  for (int i = 0; i < 1000; ++i) file.write("line " + std::to_string(i) + "\n");
  size_t total = file_size(dir.path + "/console.log") + file_size(dir.path + "/console.log.1");
  EXPECT_LE(total, 1000u);
  std::string newest = sys::read_file(dir.path + "/console.log").value();
  EXPECT_TRUE(newest.ends_with("line 999\n")) << newest;
  file.write(std::string(5000, 'z'));  // one write larger than the cap
  EXPECT_LE(file_size(dir.path + "/console.log") + file_size(dir.path + "/console.log.1"), 1000u);
}

}  // namespace vessel

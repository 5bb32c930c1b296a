#include "host/mapped_ownership.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <vector>

#include "common/sys.h"

namespace vessel {

namespace {

constexpr const char* kUid = "user.virtfs.uid";
constexpr const char* kGid = "user.virtfs.gid";
constexpr const char* kMode = "user.virtfs.mode";
constexpr const char* kRdev = "user.virtfs.rdev";
constexpr int kMaxDepth = 256;
constexpr int kEntriesLookedAt = 64;

// A little-endian 32-bit attribute, as QEMU wrote it.
std::optional<uint32_t> attribute(int fd, const char* name) {
  unsigned char value[4];
  if (::fgetxattr(fd, name, value, sizeof value) != sizeof value) return std::nullopt;
  return value[0] | value[1] << 8 | value[2] << 16 | static_cast<uint32_t>(value[3]) << 24;
}

void forget_attributes(int fd) {
  for (const char* name : {kUid, kGid, kMode, kRdev}) ::fremovexattr(fd, name);
}

Result<void> migrate_directory(int dir, int depth, MigrationReport& report);

// One entry of `dir`: a plain file or a directory QEMU made (a host link is left as it is).
Result<void> migrate_entry(int dir, const char* name, int depth, MigrationReport& report) {
  UniqueFd fd(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) < 0) return {};  // a link, a FIFO, a socket: not QEMU's
  if (S_ISDIR(st.st_mode)) TRY(migrate_directory(fd.get(), depth + 1, report));
  auto mode = attribute(fd.get(), kMode);
  if (!mode) return {};
  uid_t uid = attribute(fd.get(), kUid).value_or(st.st_uid);
  gid_t gid = attribute(fd.get(), kGid).value_or(st.st_gid);
  mode_t bits = *mode & 01777;
  if (*mode & (S_ISUID | S_ISGID) && !S_ISDIR(*mode)) ++report.setid_dropped;
  if (S_ISDIR(*mode)) bits = *mode & 03777;  // a setgid directory only hands its group down
  ++report.migrated;
  if (S_ISLNK(*mode) || S_ISFIFO(*mode)) {
    // Made again as what it stands for: the link's target is the file's content.
    std::string target = S_ISLNK(*mode) ? TRY(sys::read_to_end(fd.get(), 4096)) : "";
    fd.reset();
    if (::unlinkat(dir, name, 0) < 0) return fail_errno(std::string("unlink ") + name);
    if (S_ISLNK(*mode) ? ::symlinkat(target.c_str(), dir, name) < 0
                       : ::mknodat(dir, name, S_IFIFO | bits, 0) < 0)
      return fail_errno(std::string("remaking ") + name);
    if (::fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno(std::string("chown ") + name);
    return S_ISFIFO(*mode) && ::fchmodat(dir, name, bits, 0) < 0
               ? fail_errno(std::string("chmod ") + name)
               : Result<void>();
  }
  if (S_ISCHR(*mode) || S_ISBLK(*mode) || S_ISSOCK(*mode)) ++report.left_plain;
  if (::fchown(fd.get(), uid, gid) < 0) return fail_errno(std::string("chown ") + name);
  if (::fchmod(fd.get(), bits) < 0) return fail_errno(std::string("chmod ") + name);
  forget_attributes(fd.get());
  return {};
}

Result<void> migrate_directory(int dir, int depth, MigrationReport& report) {
  if (depth > kMaxDepth) return fail(ELOOP, "directories nested deeper than 256");
  UniqueFd listing(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  DIR* stream = listing ? ::fdopendir(listing.release()) : nullptr;
  if (!stream) return fail_errno("reading a directory");
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(stream))
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0)
      names.push_back(entry->d_name);
  ::closedir(stream);
  for (const auto& name : names) TRY(migrate_entry(dir, name.c_str(), depth, report));
  return {};
}

}  // namespace

bool holds_mapped_ownership(int fd) {
  const std::string dir = "/proc/self/fd/" + std::to_string(fd);
  char value[4];
  auto mapped = [&](const std::string& path) {
    return ::lgetxattr(path.c_str(), kMode, value, sizeof value) == sizeof value;
  };
  if (mapped(dir)) return true;
  // The volume's own directory rarely has them (the guest seldom chowns its mount point): the
  // first entries in it say.
  DIR* stream = ::opendir(dir.c_str());
  if (!stream) return false;
  bool found = false;
  int looked = 0;
  while (dirent* entry = ::readdir(stream)) {
    if (found || ++looked > kEntriesLookedAt) break;
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0)
      found = mapped(dir + "/" + entry->d_name);
  }
  ::closedir(stream);
  return found;
}

Result<MigrationReport> migrate_volume(const std::string& dir) {
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root) return fail_errno(dir);
  MigrationReport report;
  TRY(migrate_directory(root.get(), 0, report).map_error(context(dir)));
  // The volume's own directory: the share's root, whose attributes QEMU kept too.
  if (auto mode = attribute(root.get(), kMode)) {
    uid_t uid = attribute(root.get(), kUid).value_or(0);
    gid_t gid = attribute(root.get(), kGid).value_or(0);
    if (::fchown(root.get(), uid, gid) < 0 || ::fchmod(root.get(), *mode & 03777) < 0)
      return fail_errno(dir);
    forget_attributes(root.get());
    ++report.migrated;
  }
  return report;
}

}  // namespace vessel

#include "host/mount_points.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/sys.h"
#include "host/bind_source.h"

namespace vessel {

namespace {

// Makes `path` (absolute, inside `root`) exist as a directory, or as an empty file when
// `file`, one component at a time and never outside the root.
Result<void> make_in_root(int root, const std::string& path, bool file) {
  std::string prefix;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string name = path.substr(start, end - start);
    start = end + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") return fail(path + " leaves the root");
    bool last = start > path.size();
    UniqueFd parent = TRY(open_in_root(root, prefix.empty() ? "/" : prefix));
    prefix += "/" + name;
    if (open_in_root(root, prefix)) continue;
    if (last && file) {
      int fd = ::openat(parent.get(), name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0) return fail_errno("create " + prefix + " in the container");
      ::close(fd);
    } else if (::mkdirat(parent.get(), name.c_str(), 0755) < 0 && errno != EEXIST) {
      return fail_errno("mkdir " + prefix + " in the container");
    }
  }
  return {};
}

}  // namespace

Result<UniqueFd> open_in_root(int root, const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how));
  if (fd < 0) return fail_errno("open " + path + " in the container");
  return UniqueFd(fd);
}

Result<void> make_mount_points(const oci::Spec& spec) {
  UniqueFd root = TRY(sys::open(spec.root_path, O_PATH | O_DIRECTORY));
  for (const auto& mount : spec.mounts) {
    if (open_in_root(root.get(), mount.destination)) continue;
    bool file = false;
    if (is_bind(mount)) {
      struct stat st;
      file = ::stat(mount.source.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
    }
    TRY(make_in_root(root.get(), mount.destination, file));
  }
  return {};
}

}  // namespace vessel

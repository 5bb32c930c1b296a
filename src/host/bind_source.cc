#include "host/bind_source.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "common/sys.h"

namespace vessel {

bool is_bind(const oci::Mount& mount) {
  bool bind = mount.type == "bind";
  for (const auto& option : mount.options) bind |= option == "bind" || option == "rbind";
  return bind;
}

bool is_readonly(const oci::Mount& mount) {
  bool readonly = false;
  for (const auto& option : mount.options) readonly |= option == "ro";
  return readonly;
}

Result<UniqueFd> open_bind_source(const std::string& source) {
  // As mount(2) does for runc, a symlink is followed, once: from here on only the descriptor is
  // used, so the path can no longer be changed under the share.
  return sys::open(source, O_PATH).map_error(context("bind mount source"));
}

Result<BindKind> classify_bind(const oci::Mount& mount, int fd, channel::GuestBind& entry) {
  struct stat st;
  if (::fstat(fd, &st) < 0) return fail_errno("bind mount source " + mount.source);
  if (S_ISREG(st.st_mode)) return BindKind::File;
  struct statfs fs;
  if (S_ISDIR(st.st_mode) && mount.destination == "/dev/shm" && ::fstatfs(fd, &fs) == 0 &&
      fs.f_type == TMPFS_MAGIC) {
    // Shared memory belongs in the guest's memory: a tmpfs of the host one's size.
    entry.tmpfs_size = uint64_t(fs.f_blocks) * uint64_t(fs.f_bsize);
    return BindKind::GuestMade;
  }
  if (S_ISDIR(st.st_mode)) return BindKind::Directory;
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    // (rootless Podman binds devices it cannot create) The guest's own device with the same
    // numbers stands in for the host's: /dev/urandom for /dev/urandom.
    entry.device = S_ISCHR(st.st_mode) ? 'c' : 'b';
    entry.major = major(st.st_rdev);
    entry.minor = minor(st.st_rdev);
    return BindKind::GuestMade;
  }
  const char* kind = S_ISSOCK(st.st_mode)   ? "a socket"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                                            : "not a file or directory";
  return fail(EINVAL, "bind mount source " + mount.source + " is " + kind +
                          ", which a container in a VM cannot reach: share a directory or a file "
                          "instead, or use runc for this container");
}

}  // namespace vessel

#include "shim/binds.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <cstring>

#include "common/log.h"
#include "common/sys.h"

namespace vessel::shim {

bool is_bind(const oci::Mount& mount) {
  bool bind = mount.type == "bind";
  for (const auto& option : mount.options) bind |= option == "bind" || option == "rbind";
  return bind;
}

Result<UniqueFd> open_bind_source(const std::string& source) {
  // As mount(2) does for runc, a symlink is followed, once: from here on only the descriptor is
  // used, so the path can no longer be changed under the share.
  return sys::open(source, O_PATH).map_error(context("bind mount source"));
}

bool ids_reach_host_root() {
  auto map = sys::read_file("/proc/self/uid_map", 65536);
  if (!map) return true;  // unknown: assume the worst
  unsigned long inside, outside, count;
  for (const char* line = map->c_str();
       std::sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3;) {
    if (outside == 0 && count > 0) return true;
    line = std::strchr(line, '\n');
    if (!line) break;
    ++line;
  }
  return false;
}

static bool is_tmpfs(int fd) {
  struct statfs fs;
  return ::fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

static const char* special_kind(mode_t mode) {
  return S_ISSOCK(mode) ? "a socket" : S_ISFIFO(mode) ? "a FIFO" : "not a file or directory";
}

Result<BindPlan> plan_binds(const oci::Spec& spec) {
  BindPlan plan;
  const auto volume_ownership =
      ids_reach_host_root() ? hypervisor::Ownership::Mapped : hypervisor::Ownership::Host;
  for (const auto& mount : spec.mounts) {
    if (!is_bind(mount)) continue;
    bool readonly = false;
    for (const auto& option : mount.options) readonly |= option == "ro";
    UniqueFd source = TRY(open_bind_source(mount.source));
    struct stat st;
    if (::fstat(source.get(), &st) < 0) return fail_errno("bind mount source " + mount.source);
    if (S_ISREG(st.st_mode)) {
      std::string name = std::to_string(plan.files.size());
      plan.files.push_back({mount.source, readonly, source.get()});
      plan.binds.push_back({{"destination", mount.destination},
                            {"share", hypervisor::kFilesShareTag},
                            {"file", name},
                            {"readonly", readonly}});
    } else if (S_ISDIR(st.st_mode) && mount.destination == "/dev/shm" && is_tmpfs(source.get())) {
      // Podman's /dev/shm is a tmpfs of --shm-size on the host: shared memory belongs in the
      // guest's memory, so the guest mounts its own tmpfs of that size (as Kata does).
      struct statfs fs;
      ::fstatfs(source.get(), &fs);
      plan.binds.push_back({{"destination", mount.destination},
                            {"tmpfs_size", uint64_t(fs.f_blocks) * uint64_t(fs.f_bsize)},
                            {"readonly", readonly}});
      continue;
    } else if (S_ISDIR(st.st_mode)) {
      std::string tag = "volume" + std::to_string(plan.volumes.size());
      plan.volumes.push_back({tag, mount.source, readonly, volume_ownership, source.get()});
      plan.binds.push_back(
          {{"destination", mount.destination}, {"share", tag}, {"readonly", readonly}});
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      // (rootless Podman binds devices it cannot create) The guest's own device with the same
      // numbers stands in for the host's: /dev/urandom for /dev/urandom.
      plan.binds.push_back({{"destination", mount.destination},
                            {"device", S_ISCHR(st.st_mode) ? "c" : "b"},
                            {"major", major(st.st_rdev)},
                            {"minor", minor(st.st_rdev)},
                            {"readonly", readonly}});
      continue;
    } else {
      return fail(EINVAL, "bind mount source " + mount.source + " is " + special_kind(st.st_mode) +
                              ", which a container in a VM cannot reach: share a directory or a "
                              "file instead, or use runc for this container");
    }
    plan.fds.push_back(std::move(source));
  }
  return plan;
}

}  // namespace vessel::shim

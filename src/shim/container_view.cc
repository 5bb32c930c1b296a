#include "shim/container_view.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sys.h"
#include "host/mount_points.h"
#include "shim/binds.h"

namespace vessel::shim {

namespace {

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

Result<void> remount_readonly(const std::string& target) {
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | sys::locked_mount_flags(target);
  if (::mount(nullptr, target.c_str(), nullptr, flags, nullptr) < 0)
    return fail_errno("remount " + target + " read-only");
  return {};
}

Result<void> bind_at_destination(int root, const oci::Mount& mount) {
  UniqueFd source = TRY(open_bind_source(mount.source));
  auto destination = open_in_root(root, mount.destination);
  if (!destination) {
    // The guest made every mount point it could; a missing one is not ours to make from here.
    log::debug("not showing " + mount.destination +
               " to podman cp: " + destination.error().message);
    return {};
  }
  // Only what the guest shares with the host: directories and files, never a host device.
  struct stat from, to;
  if (::fstat(source.get(), &from) < 0 || ::fstat(destination->get(), &to) < 0 ||
      !(S_ISDIR(from.st_mode) || S_ISREG(from.st_mode)) ||
      S_ISDIR(from.st_mode) != S_ISDIR(to.st_mode))
    return {};
  std::string target = fd_path(destination->get());
  if (::mount(fd_path(source.get()).c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) <
      0)
    return fail_errno("bind " + mount.source + " on " + mount.destination);
  bool readonly = false;
  for (const auto& option : mount.options) readonly |= option == "ro";
  if (readonly) {
    UniqueFd mounted = TRY(open_in_root(root, mount.destination));
    TRY(remount_readonly(fd_path(mounted.get())));
  }
  return {};
}

// A mount only the guest has (a tmpfs, mqueue, devpts): the host cannot see into it, so podman
// cp there would land unseen underneath it. A read-only empty tmpfs in its place makes that an
// error the user sees ("read-only file system") instead.
Result<void> cover_guest_only_mount(int root, const oci::Mount& mount) {
  static const char* kSystem[] = {"/proc", "/sys", "/dev"};
  for (const char* prefix : kSystem)
    if (mount.destination == prefix || mount.destination.starts_with(std::string(prefix) + "/"))
      return {};
  auto destination = open_in_root(root, mount.destination);
  if (!destination) return {};
  struct stat st;
  if (::fstat(destination->get(), &st) < 0 || !S_ISDIR(st.st_mode)) return {};
  std::string target = fd_path(destination->get());
  if (::mount("guest-only", target.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=4k,mode=0555") < 0)
    return fail_errno("covering " + mount.destination);
  return {};
}

}  // namespace

Result<void> make_mounts_private() {
  if (::getpid() != 1) return {};
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0)
    return fail_errno("making the shim's mounts private");
  return {};
}

Result<void> mount_own_proc() {
  if (::getpid() != 1) return {};
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
    return fail_errno("mounting the shim's /proc");
  return {};
}

Result<void> mount_overlays(oci::Spec& spec) {
  for (auto& mount : spec.mounts) {
    if (mount.type != "overlay") continue;
    if (::getpid() != 1)
      return fail("overlay mount " + mount.destination + " needs the shim in its own namespaces");
    std::string data;
    std::vector<std::string> kept;
    for (const auto& option : mount.options) {
      bool layer = option.starts_with("lowerdir=") || option.starts_with("upperdir=") ||
                   option.starts_with("workdir=") || option == "userxattr" ||
                   option == "volatile" || option.starts_with("redirect_dir=") ||
                   option.starts_with("index=") || option.starts_with("metacopy=");
      if (!layer) {
        kept.push_back(option);
        continue;
      }
      if (option.find(',') != std::string::npos)
        return fail("overlay mount " + mount.destination + ": an option holds a comma");
      data += (data.empty() ? "" : ",") + option;
    }
    if (::mount("overlay", mount.source.c_str(), "overlay", 0, data.c_str()) < 0)
      return fail_errno("overlay mount " + mount.destination);
    mount.type = "bind";
    kept.push_back("rbind");
    mount.options = std::move(kept);
  }
  return {};
}

Result<void> enter_container_view(const oci::Spec& spec) {
  if (::getpid() != 1) return fail("the shim is not in a pid namespace of its own");
  const std::string& root = spec.root_path;
  if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    return fail_errno("bind " + root);
  UniqueFd root_fd = TRY(sys::open(root, O_PATH | O_DIRECTORY));
  // A bind that cannot be shown only hides that path from podman cp: the container still runs.
  for (const auto& mount : spec.mounts) {
    auto shown = is_bind(mount) ? bind_at_destination(root_fd.get(), mount)
                                : cover_guest_only_mount(root_fd.get(), mount);
    if (!shown)
      log::warning("podman cp will not see " + mount.destination + ": " + shown.error().message);
  }
  if (spec.root_readonly) TRY(remount_readonly(root));
  // pivot_root with the old root stacked under the new one, then detach it (as runc does).
  if (::fchdir(root_fd.get()) < 0) return fail_errno("chdir " + root);
  if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail_errno("pivot_root");
  if (::umount2(".", MNT_DETACH) < 0) return fail_errno("detaching the host's mounts");
  if (::chdir("/") < 0) return fail_errno("chdir /");
  return {};
}

}  // namespace vessel::shim

#include "agent/mounts.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "common/log.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

constexpr const char* kContainerRoot = "/run/container";

Result<void> do_mount(const std::string& source, const std::string& target, const std::string& type,
                      unsigned long flags, const std::string& data) {
  if (::mount(source.c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) < 0)
    return fail_errno("mount " + type + " on " + target);
  return {};
}

// The device nodes every container gets (the OCI spec's default devices).
Result<void> populate_dev(const std::string& dev) {
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  static const Node nodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                               {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const auto& node : nodes) {
    std::string path = dev + "/" + node.name;
    if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(node.major, node.minor)) < 0 &&
        errno != EEXIST)
      return fail_errno("mknod " + path);
    ::chmod(path.c_str(), 0666);
  }
  static const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},         {"/proc/kcore", "core"}};
  for (const auto& [target, name] : links) (void)::symlink(target, (dev + "/" + name).c_str());
  return {};
}

// linux.devices: the guest's own device with the numbers the spec gives (a VM has no host
// devices), made below the container's root without following its symbolic links.
// Owners are the container's ids, made the guest's through the spec's mappings.
Result<void> make_spec_devices(const oci::Spec& spec, const std::string& root) {
  const auto& devices = spec.devices;
  if (devices.empty()) return {};
  UniqueFd root_fd = TRY(sys::open(root, O_PATH | O_DIRECTORY));
  for (const auto& device : devices) {
    std::string parent = device.path.substr(0, device.path.rfind('/'));
    std::string name = device.path.substr(device.path.rfind('/') + 1);
    if (parent.starts_with("/dev")) TRY(sys::mkdir_p(root + parent));
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT;
    std::string relative = parent.empty() ? "." : parent.substr(1);
    // SAFETY: openat2 reads `how` of the size given.
    int dir =
        static_cast<int>(::syscall(SYS_openat2, root_fd.get(), relative.c_str(), &how, sizeof how));
    if (dir < 0) return fail_errno("linux.devices: the directory of " + device.path);
    UniqueFd dir_fd(dir);
    mode_t type = device.type == 'b' ? S_IFBLK : device.type == 'p' ? S_IFIFO : S_IFCHR;
    mode_t mode = device.file_mode.value_or(0666);
    ::unlinkat(dir_fd.get(), name.c_str(), 0);
    if (::mknodat(dir_fd.get(), name.c_str(), type | mode, makedev(device.major, device.minor)) < 0)
      return fail_errno("mknod " + device.path);
    auto uid = oci::host_id(spec.uid_mappings, device.uid.value_or(0));
    auto gid = oci::host_id(spec.effective_gid_mappings(), device.gid.value_or(0));
    if (!uid || !gid) return fail("linux.devices: the owner of " + device.path + " is not mapped");
    if (::fchmodat(dir_fd.get(), name.c_str(), mode, 0) < 0 ||
        ::fchownat(dir_fd.get(), name.c_str(), *uid, *gid, AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno("setting the owner and mode of " + device.path);
  }
  return {};
}

unsigned long propagation_flags(const std::string& propagation) {
  unsigned long flags = propagation.starts_with("r") ? MS_REC : 0;
  if (propagation.ends_with("shared")) return flags | MS_SHARED;
  if (propagation.ends_with("slave")) return flags | MS_SLAVE;
  if (propagation.ends_with("unbindable")) return flags | MS_UNBINDABLE;
  return flags | MS_PRIVATE;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// 512000 is the most virtio-9p takes: a larger msize is cut to it, with a warning on every mount.
constexpr const char* k9pOptions = "trans=virtio,version=9p2000.L,msize=512000";

// The propagation the mount's options ask for, as runc sets it after mounting.
Result<void> set_propagation(const ParsedOptions& options, const std::string& target) {
  if (options.propagation.empty()) return {};
  return do_mount("", target, "", propagation_flags(options.propagation), "");
}

std::string pod_share_path(const std::string& tag) { return "/run/pods/" + tag; }

// Host files are entries of the one files share, mounted once under /run/binds without a cache
// (Podman rewrites /etc/hosts in place) and bound from there. Host directories (the container's
// volumes, and a pod member's files too) are entries of the pod volume share (`path`); a share of
// its own (no `path`) is mounted as it is.
// A device is made, not mounted, so it gets no propagation.
Result<void> bind_from_host(const channel::GuestBind& bind, const std::string& target,
                            const ParsedOptions& options) {
  const std::string& share = bind.share;
  if (bind.tree_fd >= 0) {
    // A mount cloned from the pod's first container (clone_mount_of).
    TRY(sys::mkdir_p(target));
    if (::move_mount(bind.tree_fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
      return fail_errno("attaching the pod's mount on " + target);
  } else if (bind.tmpfs_size) {
    TRY(sys::mkdir_p(target));
    TRY(do_mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=1777,size=" + std::to_string(*bind.tmpfs_size)));
  } else if (bind.device) {
    // The guest's own device with the host device's numbers.
    TRY(sys::mkdir_p(target.substr(0, target.rfind('/'))));
    ::unlink(target.c_str());
    mode_t type = *bind.device == 'b' ? S_IFBLK : S_IFCHR;
    if (::mknod(target.c_str(), type | 0666, makedev(bind.major, bind.minor)) < 0)
      return fail_errno("mknod " + target);
    return {};
  } else if (!bind.path.empty()) {
    std::string source = pod_share_path(share) + "/" + bind.path;
    if (is_directory(source)) {
      TRY(sys::mkdir_p(target));
    } else if (!sys::exists(target)) {
      TRY(sys::mkdir_p(target.substr(0, target.rfind('/'))));
      UniqueFd created = TRY(sys::open(target, O_WRONLY | O_CREAT, 0644));
    }
    TRY(do_mount(source, target, "", MS_BIND | MS_REC, ""));
  } else if (!bind.file.empty()) {
    std::string files = "/run/binds/" + share;
    if (!is_directory(files)) {
      TRY(sys::mkdir_p(files));
      TRY(do_mount(share, files, "9p", 0, k9pOptions));
    }
    if (!sys::exists(target)) {
      TRY(sys::mkdir_p(target.substr(0, target.rfind('/'))));
      UniqueFd created = TRY(sys::open(target, O_WRONLY | O_CREAT, 0644));
    }
    TRY(do_mount(files + "/" + bind.file, target, "", MS_BIND, ""));
  } else {
    TRY(sys::mkdir_p(target));
    TRY(do_mount(share, target, "9p", 0, std::string(k9pOptions) + ",cache=mmap"));
  }
  if (bind.readonly) TRY(do_mount("", target, "", MS_REMOUNT | MS_BIND | MS_RDONLY, ""));
  return set_propagation(options, target);
}

Result<void> mount_spec_entry(const oci::Mount& mount, const std::string& root,
                              const std::vector<channel::GuestBind>& binds) {
  std::string target = root + mount.destination;
  ParsedOptions options = parse_mount_options(mount.options);
  // What the shim shares in place of a host mount (a bind, an overlay it mounted, Podman's shm).
  for (const auto& bind : binds)
    if (bind.destination == mount.destination) return bind_from_host(bind, target, options);
  if ((options.flags & MS_BIND) || mount.type == "bind") {
    log::debug("skipping bind mount of " + mount.source + " on " + mount.destination);
    return {};
  }
  TRY(sys::mkdir_p(target));
  std::string data = options.data;
  if (mount.type == "devpts")
    data += std::string(data.empty() ? "" : ",") + "newinstance,ptmxmode=0666";
  // cgroup (v1 or v2 in the spec) is the guest's own cgroup2, seen from the container's cgroup
  // namespace: its own limits, as with runc.
  bool cgroup = mount.type == "cgroup" || mount.type == "cgroup2";
  std::string type = cgroup ? "cgroup2" : mount.type;
  TRY(do_mount(cgroup || mount.source.empty() ? type : mount.source, target, type,
               options.flags & ~MS_RDONLY, cgroup ? "" : data));
  if (options.flags & MS_RDONLY)
    TRY(do_mount("", target, "", MS_REMOUNT | MS_BIND | MS_RDONLY | (options.flags & ~MS_RDONLY),
                 ""));
  if (mount.destination == "/dev" && mount.type == "tmpfs") TRY(populate_dev(target));
  return set_propagation(options, target);
}

}  // namespace

ParsedOptions parse_mount_options(const std::vector<std::string>& options) {
  static const std::map<std::string, std::pair<bool, unsigned long>> known = {
      {"ro", {true, MS_RDONLY}},         {"rw", {false, MS_RDONLY}},
      {"nosuid", {true, MS_NOSUID}},     {"suid", {false, MS_NOSUID}},
      {"nodev", {true, MS_NODEV}},       {"dev", {false, MS_NODEV}},
      {"noexec", {true, MS_NOEXEC}},     {"exec", {false, MS_NOEXEC}},
      {"relatime", {true, MS_RELATIME}}, {"strictatime", {true, MS_STRICTATIME}},
      {"noatime", {true, MS_NOATIME}},   {"sync", {true, MS_SYNCHRONOUS}},
      {"bind", {true, MS_BIND}},         {"rbind", {true, MS_BIND | MS_REC}},
  };
  static const char* propagation[] = {"private", "rprivate", "shared",     "rshared",
                                      "slave",   "rslave",   "unbindable", "runbindable"};
  ParsedOptions parsed;
  for (const auto& option : options) {
    if (auto it = known.find(option); it != known.end()) {
      if (it->second.first)
        parsed.flags |= it->second.second;
      else
        parsed.flags &= ~it->second.second;
      continue;
    }
    bool is_propagation = false;
    for (const char* name : propagation) is_propagation |= option == name;
    if (is_propagation) parsed.propagation = option;
    if (is_propagation || option == "tmpcopyup") continue;
    if (!parsed.data.empty()) parsed.data += ",";
    parsed.data += option;
  }
  return parsed;
}

Result<void> mount_guest_filesystems() {
  TRY(sys::mkdir_p("/proc"));
  TRY(sys::mkdir_p("/sys"));
  TRY(sys::mkdir_p("/dev"));
  TRY(do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  TRY(do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  // DEVTMPFS_MOUNT does not apply when the kernel boots from an initramfs.
  if (::mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY)
    return fail_errno("mount devtmpfs on /dev");
  TRY(sys::mkdir_p("/dev/pts"));
  TRY(do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666"));
  TRY(sys::mkdir_p(kContainerRoot));
  return {};
}

Result<UniqueFd> clone_mount_of(pid_t pid, const std::string& path) {
  // The kernel starts PID 1 sharing its fs_struct (root, cwd) with the kernel's own threads, and
  // setns refuses a mount namespace to a process whose fs_struct is shared.
  if (::unshare(CLONE_FS) < 0) return fail_errno("unsharing the agent's root and cwd");
  UniqueFd own = TRY(sys::open("/proc/self/ns/mnt", O_RDONLY));
  UniqueFd theirs = TRY(sys::open("/proc/" + std::to_string(pid) + "/ns/mnt", O_RDONLY));
  if (::setns(theirs.get(), CLONE_NEWNS) < 0) return fail_errno("entering the pod's mounts");
  UniqueFd tree(::open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  int error = errno;
  // Back to the agent's own mounts, whatever happened: everything else depends on them.
  if (::setns(own.get(), CLONE_NEWNS) < 0) return fail_errno("returning to the agent's mounts");
  if (!tree) return fail(error, "cloning the pod's " + path + ": " + std::strerror(error));
  return tree;
}

Result<void> mount_pod_share(const std::string& tag) {
  const std::string mounted = pod_share_path(tag);
  // Mounted already when it is on another device than /run/pods (9p's statfs reports the
  // host's file system, not 9p).
  struct stat share, parent;
  if (::stat(mounted.c_str(), &share) == 0 && ::stat("/run/pods", &parent) == 0 &&
      share.st_dev != parent.st_dev)
    return {};
  TRY(sys::mkdir_p(mounted));
  // As the root and every volume: without a cache mode 9p maps files read-only, and a program
  // that maps a file shared and writable (a database) would fail.
  return do_mount(tag, mounted, "9p", 0, std::string(k9pOptions) + ",cache=mmap");
}

Result<void> enter_container_root(const oci::Spec& spec, const RootSource& root_source,
                                  const std::vector<channel::GuestBind>& binds) {
  TRY(do_mount("", "/", "", MS_REC | MS_PRIVATE, ""));
  const std::string root = kContainerRoot;
  auto mounted =
      root_source.path.empty()
          ? do_mount(root_source.tag, root, "9p", 0, std::string(k9pOptions) + ",cache=mmap")
          : do_mount(pod_share_path(root_source.tag) + "/" + root_source.path, root, "",
                     MS_BIND | MS_REC, "");
  TRY(mounted.map_error(context("mounting the container's root filesystem")));
  bool have_dev = false;
  for (const auto& mount : spec.mounts) {
    TRY(mount_spec_entry(mount, root, binds).map_error(context("mounting " + mount.destination)));
    have_dev |= mount.destination == "/dev";
  }
  if (!have_dev && is_directory(root + "/dev")) {
    TRY(do_mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID, "mode=755,size=65536k"));
    TRY(populate_dev(root + "/dev"));
    TRY(sys::mkdir_p(root + "/dev/pts"));
    TRY(do_mount("devpts", root + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                 "newinstance,ptmxmode=0666"));
  }
  TRY(make_spec_devices(spec, root));
  // An initramfs root cannot be pivoted away from: move the new root over "/" and chroot.
  if (::chdir(root.c_str()) < 0) return fail_errno("chdir " + root);
  TRY(do_mount(".", "/", "", MS_MOVE, ""));
  if (::chroot(".") < 0) return fail_errno("chroot");
  if (::chdir("/") < 0) return fail_errno("chdir /");
  if (!spec.rootfs_propagation.empty())
    TRY(do_mount("", "/", "", propagation_flags(spec.rootfs_propagation), ""));
  for (const auto& [key, value] : spec.sysctl) {
    std::string path = "/proc/sys/" + key;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    TRY(sys::write_all(TRY(sys::open(path, O_WRONLY)).get(), value)
            .map_error(context("sysctl " + key)));
  }
  // As runc: a masked file is covered by /dev/null, a masked directory by an empty read-only tmpfs.
  for (const auto& path : spec.masked_paths) {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) continue;
    if (S_ISDIR(st.st_mode))
      TRY(do_mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0"));
    else
      TRY(do_mount("/dev/null", path, "", MS_BIND, ""));
  }
  for (const auto& path : spec.readonly_paths) {
    if (!sys::exists(path)) continue;
    TRY(do_mount(path, path, "", MS_BIND | MS_REC, ""));
    TRY(do_mount("", path, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 ""));
  }
  if (spec.root_readonly) TRY(do_mount("", "/", "", MS_REMOUNT | MS_BIND | MS_RDONLY, ""));
  return {};
}

}  // namespace vessel::agent

#include "hypervisor/qemu/jail.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "common/sys.h"
#include "host/confine.h"

namespace vessel::hypervisor {

namespace {

// Where the jail's root is assembled, in the child's own mount namespace (hidden from the host).
constexpr const char* kJailRoot = "/tmp";

Result<void> write_map(pid_t child, const char* kind) {
  std::string own = TRY(sys::read_file(std::string("/proc/self/") + kind, 65536));
  std::string identity;
  unsigned long inside, outside, count;
  for (const char* line = own.c_str();
       std::sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3;) {
    identity +=
        std::to_string(inside) + " " + std::to_string(inside) + " " + std::to_string(count) + "\n";
    line = std::strchr(line, '\n');
    if (!line) break;
    ++line;
  }
  std::string path = "/proc/" + std::to_string(child) + "/" + kind;
  UniqueFd fd = TRY(sys::open(path, O_WRONLY));
  return sys::write_all(fd.get(), identity).map_error(context("writing " + path));
}

Result<void> make_mount_point(const std::string& path, bool directory) {
  TRY(sys::mkdir_p(path.substr(0, path.rfind('/')), 0755));
  if (directory) {
    if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) return fail_errno("mkdir " + path);
    return {};
  }
  UniqueFd fd = TRY(sys::open(path, O_WRONLY | O_CREAT | O_NOFOLLOW, 0644));
  return {};
}

Result<void> bind_into(const std::string& source, const std::string& target, bool directory,
                       bool readonly, unsigned long extra) {
  TRY(make_mount_point(target, directory));
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    return fail_errno("bind " + source + " on " + target);
  unsigned long flags =
      MS_REMOUNT | MS_BIND | extra | sys::locked_mount_flags(target) | (readonly ? MS_RDONLY : 0);
  if (::mount(nullptr, target.c_str(), nullptr, flags, nullptr) < 0)
    return fail_errno("remount " + target);
  return {};
}

// The loader's links and directories outside /usr, as the host has them (/lib → usr/lib …).
Result<void> bind_system_dirs(const std::string& root) {
  TRY(bind_into("/usr", root + "/usr", true, true, MS_NODEV));
  for (const char* dir : {"/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"}) {
    struct stat st;
    if (::lstat(dir, &st) < 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = ::readlink(dir, target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      if (::symlink(target, (root + dir).c_str()) < 0)
        return fail_errno(std::string("symlink ") + dir);
    } else if (S_ISDIR(st.st_mode)) {
      TRY(bind_into(dir, root + dir, true, true, MS_NODEV));
    }
  }
  if (sys::exists("/etc/ld.so.cache"))
    TRY(bind_into("/etc/ld.so.cache", root + "/etc/ld.so.cache", false, true, MS_NODEV));
  return {};
}

// Symlinks are followed as the shim followed them; the inode must be the one it opened.
Result<UniqueFd> reach(const JailBind& bind_) {
  UniqueFd source = TRY(sys::open(bind_.source, O_PATH));
  struct stat now, checked;
  if (bind_.expected >= 0 &&
      (::fstat(source.get(), &now) < 0 || ::fstat(bind_.expected, &checked) < 0 ||
       now.st_dev != checked.st_dev || now.st_ino != checked.st_ino))
    return fail(EBUSY, bind_.source + " was replaced while the VM was starting");
  if (bind_.expected >= 0) ::close(bind_.expected);
  return source;
}

// Every source is a host path or a descriptor: reach them before the tmpfs hides /tmp, in the
// order they are bound below (binds, devices, then binds inside the scratch directories).
Result<std::vector<UniqueFd>> reach_sources(const JailPlan& plan) {
  std::vector<UniqueFd> sources;
  for (const auto& bind_ : plan.binds) sources.push_back(TRY(reach(bind_)));
  for (const auto& device : plan.devices) sources.push_back(TRY(sys::open(device, O_PATH)));
  for (const auto& bind_ : plan.scratch_binds) sources.push_back(TRY(reach(bind_)));
  return sources;
}

// Fills the jail's root at `root` from the plan, each source bound from its descriptor.
Result<void> build_root(const std::string& root, const JailPlan& plan,
                        std::vector<UniqueFd> sources) {
  if (::mount("vessel-jail", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
    return fail_errno("mounting QEMU's root");
  TRY(bind_system_dirs(root));
  size_t index = 0;
  for (const auto& bind_ : plan.binds) {
    TRY(bind_into("/proc/self/fd/" + std::to_string(sources[index++].get()), root + bind_.target,
                  bind_.directory, bind_.readonly, MS_NOSUID | MS_NODEV));
  }
  for (const auto& device : plan.devices)
    TRY(bind_into("/proc/self/fd/" + std::to_string(sources[index++].get()), root + device, false,
                  false, MS_NOSUID));
  // Bounded: the guest can write into them too (a pod member's mount points, nothing more).
  for (const auto& dir : plan.scratch) {
    TRY(make_mount_point(root + dir, true));
    if (::mount("vessel-pod", (root + dir).c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                "size=1m,nr_inodes=4096,mode=0755") < 0)
      return fail_errno("mounting " + dir);
  }
  for (const auto& bind_ : plan.scratch_binds)
    TRY(bind_into("/proc/self/fd/" + std::to_string(sources[index++].get()), root + bind_.target,
                  bind_.directory, bind_.readonly, MS_NOSUID | MS_NODEV));
  sources.clear();
  for (const auto& dir : plan.empty_dirs) TRY(make_mount_point(root + dir, true));
  // 9p sets modes through /proc/self/fd. Only its own pids are there (subset=pid: no
  // sysrq-trigger, no /proc/sys), and the pid namespace holds QEMU alone.
  TRY(make_mount_point(root + "/proc", true));
  if (::mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "subset=pid") < 0)
    return fail_errno("mounting QEMU's /proc");
  return {};
}

// pivot_root with the old root stacked under the new one, then detach it (as runc does).
Result<void> pivot_into(const std::string& root) {
  if (::chdir(root.c_str()) < 0) return fail_errno("chdir " + root);
  if (::syscall(SYS_pivot_root, ".", ".") < 0) return fail_errno("pivot_root");
  if (::umount2(".", MNT_DETACH) < 0) return fail_errno("detaching the host's mounts");
  if (::chdir("/") < 0) return fail_errno("chdir /");
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) < 0)
    return fail_errno("making QEMU's root read-only");
  return {};
}

}  // namespace

int jail_namespaces() {
  return CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
}

Result<void> write_identity_maps(pid_t child) {
  TRY(write_map(child, "uid_map").map_error(context("QEMU's user namespace")));
  TRY(write_map(child, "gid_map").map_error(context("QEMU's user namespace")));
  return {};
}

Result<void> enter_jail(const JailPlan& plan) {
  const std::string root = kJailRoot;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
    return fail_errno("making QEMU's mounts private");
  std::vector<UniqueFd> sources = TRY(reach_sources(plan));
  TRY(build_root(root, plan, std::move(sources)));
  TRY(pivot_into(root));
  ::sethostname("vessel-qemu", 11);
  // QEMU asks for transparent huge pages on guest RAM: one 4 KiB page a guest touches would then
  // hold 2 MiB of the host's (a restored template's sparse memory three times over). Inherited
  // across exec.
  if (::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0) return fail_errno("disabling huge pages");
  // The only capabilities QEMU keeps, inside its own user namespace: what its 9p server needs to
  // act on files of any owner (passthrough ownership on the root filesystem, xattrs elsewhere).
  TRY(drop_capabilities(
      {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID}));
  return refuse_privileged_syscalls();
}

}  // namespace vessel::hypervisor

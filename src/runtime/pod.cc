#include "runtime/pod.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/channel/messages.h"
#include "common/scope_exit.h"
#include "common/sys.h"
#include "host/bind_source.h"
#include "host/host_cgroup.h"
#include "host/mount_points.h"
#include "host/oom_report.h"
#include "hypervisor/hypervisor.h"
#include "runtime/exec.h"

namespace vessel::runtime {

namespace {

// A clone of a host mount, detached, to be attached in QEMU's namespace as `name` in the root of
// the pod share `share`. The guest can write in those roots (only there: the jail's tmpfs is
// bounded), so nothing is reached through a name it could have made: each mount point is a
// direct entry of the share's root, created and opened without following a symlink, and the
// clone is attached to that descriptor.
struct MemberMount {
  UniqueFd tree;
  std::string share;
  std::string name;
  bool directory = true;
};

Result<UniqueFd> clone_tree(int fd, const std::string& what, bool readonly) {
  UniqueFd tree(
      ::open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH));
  if (!tree) return fail_errno("cloning the mount of " + what);
  // As QEMU's jail binds every share: no setuid binaries, no device nodes from the host.
  mount_attr attributes{};
  attributes.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attributes,
                      sizeof attributes) < 0)
    return fail_errno("setting the attributes of " + what);
  return tree;
}

// QEMU is the sandbox shim's child (the only one once the VM runs).
Result<pid_t> qemu_of(const ContainerState& sandbox) {
  std::string pid = std::to_string(sandbox.pid);
  auto children = sys::read_file("/proc/" + pid + "/task/" + pid + "/children", 4096);
  if (children && sys::process_alive(sandbox.pid, sandbox.pid_start_time))
    for (size_t at = 0; at < children->size();) {
      pid_t child = std::atoi(children->c_str() + at);
      auto comm = sys::read_file("/proc/" + std::to_string(child) + "/comm", 64);
      if (child > 0 && comm && comm->starts_with("qemu")) return child;
      at = children->find(' ', at);
      if (at == std::string::npos) break;
      ++at;
    }
  return fail(ESRCH, "the pod's VM (sandbox " + sandbox.id + ") is not running");
}

// Runs `work` in a child that has entered QEMU's mount namespace; its error comes back.
Result<void> in_qemu_mounts(pid_t qemu, const std::function<Result<void>()>& work) {
  UniqueFd ns = TRY(sys::open("/proc/" + std::to_string(qemu) + "/ns/mnt", O_RDONLY));
  TRY(in_namespace(ns.get(), CLONE_NEWNS, [&]() -> Result<std::string> {
    TRY(work());
    return std::string();
  }));
  return {};
}

// In QEMU's mount namespace: the root of a pod share (the jail's own path, not the guest's).
Result<UniqueFd> open_share(const std::string& share) {
  return sys::open(hypervisor::jail_pod_share_path(share), O_PATH | O_DIRECTORY | O_NOFOLLOW);
}

Result<void> attach(const MemberMount& mount) {
  UniqueFd share = TRY(open_share(mount.share));
  const char* name = mount.name.c_str();
  if (mount.directory) {
    if (::mkdirat(share.get(), name, 0755) < 0 && errno != EEXIST)
      return fail_errno("mkdir " + mount.name);
  } else {
    UniqueFd made(::openat(share.get(), name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!made) return fail_errno("creating " + mount.name);
  }
  UniqueFd target(::openat(share.get(), name,
                           O_PATH | O_NOFOLLOW | O_CLOEXEC | (mount.directory ? O_DIRECTORY : 0)));
  if (!target) return fail_errno("opening the mount point " + mount.name);
  if (::move_mount(mount.tree.get(), "", target.get(), "",
                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return fail_errno("attaching " + mount.name);
  return {};
}

// The member's root and bind sources as mounts for QEMU's namespace, and the binds as the agent
// reads them (agent/mounts.h): its root is ID in pod-roots, its volumes and files ID@N in
// pod-volumes ('@' is never part of an id).
Result<std::vector<MemberMount>> plan_member_mounts(const std::string& id, const oci::Spec& spec,
                                                    std::vector<channel::GuestBind>& binds) {
  std::vector<MemberMount> mounts;
  if (spec.root_readonly) TRY(make_mount_points(spec));
  UniqueFd root = TRY(sys::open(spec.root_path, O_PATH | O_DIRECTORY));
  mounts.push_back({TRY(clone_tree(root.get(), "the root filesystem", spec.root_readonly)),
                    channel::kPodRootsTag, id, true});
  for (const auto& mount : spec.mounts) {
    if (!is_bind(mount)) continue;
    bool readonly = is_readonly(mount);
    UniqueFd source = TRY(open_bind_source(mount.source));
    channel::GuestBind entry{mount.destination, readonly};
    BindKind kind = TRY(classify_bind(mount, source.get(), entry));
    if (kind != BindKind::GuestMade) {
      std::string name = id + "@" + std::to_string(mounts.size());
      entry.share = channel::kPodVolumesTag;
      entry.path = name;
      mounts.push_back({TRY(clone_tree(source.get(), mount.source, readonly)),
                        channel::kPodVolumesTag, name, kind == BindKind::Directory});
    }
    binds.push_back(entry);
  }
  return mounts;
}

// Detaches and removes the entries of a share's root that belong to member `id` (ID, ID@N),
// never following a name the guest may have made.
void detach_entries(const std::string& share, const std::string& id) {
  auto dir_fd = open_share(share);
  if (!dir_fd) return;
  const std::string path = hypervisor::jail_pod_share_path(share);
  UniqueFd listing(::openat(dir_fd->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* dir = listing ? ::fdopendir(listing.release()) : nullptr;
  if (!dir) return;
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name == id || name.starts_with(id + "@")) names.push_back(name);
  }
  ::closedir(dir);
  for (const auto& name : names) {
    ::umount2((path + "/" + name).c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    if (::unlinkat(dir_fd->get(), name.c_str(), AT_REMOVEDIR) < 0)
      ::unlinkat(dir_fd->get(), name.c_str(), 0);
  }
}

// Each namespace a member names by path must be its pod's: the sandbox shim's.
Result<void> check_member_namespaces(const oci::Spec& spec, const ContainerState& sandbox) {
  static const std::pair<const char*, const char*> kShareable[] = {
      {"network", "net"}, {"ipc", "ipc"}, {"uts", "uts"}, {"pid", "pid"}};
  for (const auto& ns : spec.namespaces) {
    if (ns.path.empty()) continue;
    const char* name = nullptr;
    for (const auto& [type, proc_name] : kShareable)
      if (ns.type == type) name = proc_name;
    if (!name)
      return fail(EINVAL,
                  "linux.namespaces: a pod member in a VM can share its pod's network, "
                  "ipc, uts and pid namespaces, not the " +
                      ns.type + " namespace " + ns.path + ": give it a " + ns.type +
                      " namespace of its own");
    struct stat wanted, pods;
    std::string pod_ns = "/proc/" + std::to_string(sandbox.pid) + "/ns/" + name;
    if (::stat(ns.path.c_str(), &wanted) < 0 || ::stat(pod_ns.c_str(), &pods) < 0 ||
        wanted.st_dev != pods.st_dev || wanted.st_ino != pods.st_ino)
      return fail(EINVAL, "linux.namespaces: " + ns.path + " is not the " + ns.type +
                              " namespace of the pod's sandbox " + sandbox.id +
                              ": a pod member can only share its own pod's");
  }
  return {};
}

}  // namespace

std::optional<std::string> sandbox_of(const std::map<std::string, std::string>& annotations) {
  static const std::pair<const char*, const char*> kKeys[] = {
      {"io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID"},
      {"io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id"}};
  for (const auto& [type, sandbox] : kKeys) {
    auto kind = annotations.find(type);
    auto id = annotations.find(sandbox);
    if (kind != annotations.end() && kind->second == "container" && id != annotations.end() &&
        !id->second.empty())
      return id->second;
  }
  return std::nullopt;
}

namespace {

// The member's host process joins the host cgroup of the pod's VM: what reads the member's
// cgroup through its pid (containerd's runc v2 shim, for ContainerStats) then measures the VM
// the member runs in, not the host's root cgroup. Where that cannot be done, nothing is.
void join_the_pods_cgroup(const ContainerState& sandbox, pid_t relay) {
  auto spec = bundle_spec(sandbox.bundle);
  std::string path = spec ? spec->cgroups_path : "";
  if (path.starts_with("/")) (void)host_cgroup::join(host_cgroup::directories(path), relay);
}

}  // namespace

Result<ChildProcess> create_member(const StateStore& store, const CreateRequest& request,
                                   const std::string& bundle, const oci::Spec& spec,
                                   const std::string& sandbox_id) {
  auto loaded = store.load(sandbox_id);
  if (!loaded)
    return fail(ENOENT, "the pod's sandbox " + sandbox_id +
                            " is not a vessel container, and a pod is one VM: run the pod's "
                            "infra container with vessel too (podman --runtime=vessel pod "
                            "create, or make vessel the default: vessel setup --user --default)");
  const ContainerState& sandbox = *loaded;
  if (!sandbox.sandbox.empty())
    return fail(EINVAL, "the pod's sandbox " + sandbox_id + " is itself a member of a pod");
  Status status = sandbox.effective_status();
  if (status != Status::Created && status != Status::Running)
    return fail("the pod's sandbox " + sandbox_id + " is " + std::string(status_name(status)) +
                ": start the pod first");
  TRY(check_member_namespaces(spec, sandbox));
  pid_t qemu = TRY(qemu_of(sandbox));

  TRY(store.create_dir(request.id));
  ContainerState state;
  state.id = request.id;
  state.bundle = bundle;
  state.created = now_rfc3339();
  state.sandbox = sandbox_id;
  state.annotations = spec.annotations;
  ScopeExit remove_dir([&] {
    remove_member_mounts(store, state);
    (void)store.remove(request.id);
  });
  TRY(store.save(state));

  std::vector<channel::GuestBind> binds;
  std::vector<MemberMount> mounts = TRY(plan_member_mounts(request.id, spec, binds));
  TRY(in_qemu_mounts(qemu, [&]() -> Result<void> {
        for (const auto& mount : mounts) TRY(attach(mount));
        return {};
      }).map_error(context("sharing the member's files with the pod's VM")));
  mounts.clear();

  // The member's host process: it exits with the member's status and reports an OOM kill of
  // the member's memory limit as the host hears of one (host/oom_report.h).
  control::request::CreateMember create{spec.document, binds, request.id, spec.process.terminal};
  DetachedRelay relay = TRY(spawn_relay(sandbox.shim_socket(store.root()),
                                        control::Request{create, 0}, request.console_socket,
                                        [bundle, id = request.id](const control::Exited& exit) {
                                          if (!exit.oom_killed) return;
                                          if (auto dir = sys::open(bundle, O_PATH | O_DIRECTORY))
                                            report_oom_kill(dir->get(), bundle, id);
                                        }));
  ChildProcess process = ChildProcess::adopt(relay.pid);
  join_the_pods_cgroup(sandbox, relay.pid);
  if (relay.answer.member == 0) return fail(EPROTO, "the pod's shim did not name the member");
  state.member = relay.answer.member;
  TRY(record_created(store, state, relay.pid, spec, request.pid_file));
  remove_dir.cancel();
  return process;
}

void remove_member_mounts(const StateStore& store, const ContainerState& member) {
  auto sandbox = store.load(member.sandbox);
  if (!sandbox) return;
  auto qemu = qemu_of(*sandbox);
  if (!qemu) return;
  (void)in_qemu_mounts(*qemu, [&]() -> Result<void> {
    detach_entries(channel::kPodRootsTag, member.id);
    detach_entries(channel::kPodVolumesTag, member.id);
    return {};
  });
}

}  // namespace vessel::runtime

#include "agent/containers.h"

#include "agent/cgroup.h"
#include "agent/device_filter.h"
#include "common/log.h"

namespace vessel::agent {

namespace {

constexpr const char* kRootfsTag = "rootfs";

oci::Resources limits_of(const oci::Spec& spec) {
  oci::Resources limits = spec.resources;
  limits.devices = effective_device_rules(spec);
  return limits;
}

}  // namespace

Container* Containers::find(uint32_t id) {
  auto it = m_containers.find(id);
  return it == m_containers.end() ? nullptr : it->second.get();
}

Result<void> Containers::create(const channel::from_host::Create& message) {
  if (m_containers.count(0)) return fail("a container was created already");
  oci::Spec spec = TRY(oci::parse_spec(message.spec));
  oci::Resources limits = limits_of(spec);
  bool limited = limits.memory_limit || limits.pids_limit || limits.cpu_quota ||
                 !limits.cpuset_cpus.empty() || !limits.devices.empty();
  Placement placement{{kRootfsTag, ""}};
  if (auto made = create_cgroup(placement.cgroup, limits); !made) {
    if (limited) return tl::unexpected(made.error());
    log::warning("no cgroup for the container: " + made.error().message);
  }
  // The container's volumes are entries of the pod volume share (shim/binds.h).
  for (const auto& bind : message.binds)
    if (!bind.path.empty())
      TRY(mount_pod_share(channel::kPodVolumesTag).map_error(context("the volumes' share")));
  ContainerStdio stdio;
  auto container = std::make_unique<Container>(
      TRY(Container::create(spec, placement, message.binds, message.seccomp, stdio)));
  m_processes.add(0, 0, container->pid(), stdio);
  m_containers[0] = std::move(container);
  return {};
}

Result<void> Containers::create_member(const channel::from_host::CreateMember& message) {
  Container* pod = find(0);
  if (!pod || !m_processes.running(0)) return fail("the pod's VM has no running container to join");
  TRY(m_processes.check_new(message.member));
  const std::string& root = message.root;
  if (root.empty() || root.find('/') != std::string::npos || root[0] == '.')
    return fail("bad root directory name");
  oci::Spec spec = TRY(oci::parse_spec(message.spec));
  for (const char* tag : {channel::kPodRootsTag, channel::kPodVolumesTag})
    TRY(mount_pod_share(tag).map_error(context("the pod's shares")));
  Placement placement{
      {channel::kPodRootsTag, root}, "container-" + std::to_string(message.member), pod->pid()};
  std::vector<channel::GuestBind> binds = message.binds;
  // A member in the pod's IPC namespace shares its /dev/shm too, as under runc (Podman binds
  // the infra container's into every member): the pod's tmpfs, not one of its own.
  UniqueFd pod_shm;
  const oci::Namespace* ipc = spec.find_namespace("ipc");
  if (ipc && !ipc->path.empty())
    for (auto& bind : binds)
      if (bind.destination == "/dev/shm" && bind.tmpfs_size) {
        if (!pod_shm) pod_shm = TRY(clone_mount_of(pod->pid(), "/dev/shm"));
        bind.tmpfs_size.reset();
        bind.tree_fd = pod_shm.get();
      }
  TRY(create_cgroup(placement.cgroup, limits_of(spec)));
  ContainerStdio stdio;
  auto created = Container::create(spec, placement, binds, message.seccomp, stdio);
  if (!created) {
    remove_cgroup(placement.cgroup);
    return tl::unexpected(created.error());
  }
  m_processes.add(message.member, message.member, created->pid(), stdio);
  m_containers[message.member] = std::make_unique<Container>(std::move(*created));
  return {};
}

Result<void> Containers::exec(const channel::from_host::Exec& message) {
  Container* container = find(message.container);
  if (!container || !m_processes.running(message.container))
    return fail("the container is not running");
  TRY(m_processes.check_new(message.id));
  oci::Process process = TRY(oci::parse_process(message.process));
  ContainerStdio stdio;
  pid_t pid = TRY(container->exec(process, stdio));
  m_processes.add(message.id, message.container, pid, stdio);
  return {};
}

void Containers::remove(uint32_t id) {
  if (Container* container = find(id)) {
    remove_cgroup(container->cgroup());
    m_containers.erase(id);
  }
}

}  // namespace vessel::agent

// The containers of this VM: the one it was booted for (id 0) and a pod's members (by the id of
// their init, which the shim gives), each created with its init in the process table, and the
// processes exec'd into them.
#pragma once

#include <map>
#include <memory>

#include "agent/container.h"
#include "agent/process_table.h"
#include "common/channel/host_messages.h"

namespace vessel::agent {

class Containers {
 public:
  explicit Containers(ProcessTable& processes) : m_processes(processes) {}

  Container* find(uint32_t id);
  bool empty() const { return m_containers.empty(); }
  Result<void> create(const channel::from_host::Create& message);
  // A pod member: its root is the directory the host mounted into the pod's share, its limits a
  // cgroup of its own, and it joins the pod's namespaces its spec names.
  Result<void> create_member(const channel::from_host::CreateMember& message);
  Result<void> exec(const channel::from_host::Exec& message);
  // A pod member whose init was reported: its cgroup (empty now: its pid namespace ended) goes.
  void remove(uint32_t id);

 private:
  ProcessTable& m_processes;
  std::map<uint32_t, std::unique_ptr<Container>> m_containers;
};

}  // namespace vessel::agent

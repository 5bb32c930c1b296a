// The container's bind mounts (common/bind_source.h) as the VM it boots for serves them: a
// directory (a volume) is an entry of the pod volume share, bound there when QEMU starts (so a VM's
// devices do not depend on its volumes, and it can come from a template); regular files
// (resolv.conf, hosts, hostname, .containerenv, -v FILE:FILE) are shared together through one 9p
// share whose root holds those files alone, so writes go both ways and no sibling is exposed. A
// volume keeps the owners the guest sets (as Podman's mapping says, as with runc) when QEMU's ids
// cannot reach the host's root (rootless); where they can, its ownership is mapped
// (hypervisor::Ownership::Mapped) so that no setuid-root file or device node reaches the host.
// Bound files are always mapped: the guest only writes their content.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "common/bind_source.h"
#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "hypervisor/hypervisor.h"

namespace vessel::shim {

struct BindPlan {
  std::vector<hypervisor::PodShareEntry> volumes;  // fds point into `fds`
  std::vector<hypervisor::SharedFile> files;
  std::vector<UniqueFd> fds;
  hypervisor::Ownership volume_ownership = hypervisor::Ownership::Mapped;
  // For the agent: destination, share[, file | path].
  nlohmann::json binds = nlohmann::json::array();
};

Result<BindPlan> plan_binds(const oci::Spec& spec);
// Whether this process's user namespace maps the host's uid 0 (QEMU's jail keeps the same ids).
bool ids_reach_host_root();

}  // namespace vessel::shim

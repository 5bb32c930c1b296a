// The container's bind mounts (host/bind_source.h) as the VM it boots for serves them: a
// directory (a volume) is an entry of the pod volume share, bound there when QEMU starts (so a VM's
// devices do not depend on its volumes, and it can come from a template); regular files
// (resolv.conf, hosts, hostname, .containerenv, -v FILE:FILE) are shared together through one 9p
// share whose root holds those files alone, so writes go both ways and no sibling is exposed.
// Volumes and bound files keep the owners and modes the guest sets (as runc gives them, through
// Podman's mapping when rootless) but never take a setuid or setgid bit, nor become a device node
// (hypervisor::Ownership::Guarded).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "host/bind_source.h"
#include "hypervisor/hypervisor.h"

namespace vessel::shim {

struct BindPlan {
  std::vector<hypervisor::PodShareEntry> volumes;  // fds point into `fds`
  std::vector<hypervisor::SharedFile> files;
  std::vector<UniqueFd> fds;
  std::vector<channel::GuestBind> binds;  // for the agent
};

Result<BindPlan> plan_binds(const oci::Spec& spec);

}  // namespace vessel::shim

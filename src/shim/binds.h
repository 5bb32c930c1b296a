// Bind mounts come from the host, which the guest cannot see. A directory (a volume) is shared
// over 9p; regular files (resolv.conf, hosts, hostname, .containerenv, -v FILE:FILE) are shared
// together through one 9p share whose root holds those files alone, so writes go both ways and
// no sibling is exposed. A volume keeps the owners the guest sets (as Podman's mapping says, as
// with runc) when QEMU's ids cannot reach the host's root (rootless); where they can, its
// ownership is mapped (hypervisor::Ownership::Mapped) so that no setuid-root file or device node
// reaches the host. Bound files are always mapped: the guest only writes their content. A device
// becomes the guest's own device with the same numbers. A socket or FIFO cannot cross into a VM:
// it is refused. Each source is opened once (following symlinks, as mount(2) does for runc:
// Podman binds /usr/libexec/podman/catatonit, a symlink, for --init) and only that descriptor
// is used, so a path swapped after the check cannot redirect a root-owned share.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "hypervisor/hypervisor.h"

namespace vessel::shim {

struct BindPlan {
  std::vector<hypervisor::Share> volumes;  // fds point into `fds`
  std::vector<hypervisor::SharedFile> files;
  std::vector<UniqueFd> fds;
  nlohmann::json binds = nlohmann::json::array();  // for the agent: destination, share[, file]
};

bool is_bind(const oci::Mount& mount);
// O_PATH descriptor of a bind source, symlinks followed.
Result<UniqueFd> open_bind_source(const std::string& source);
Result<BindPlan> plan_binds(const oci::Spec& spec);
// Whether this process's user namespace maps the host's uid 0 (QEMU's jail keeps the same ids).
bool ids_reach_host_root();

}  // namespace vessel::shim

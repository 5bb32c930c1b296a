// The container's user namespace in the guest, from linux.uidMappings / gidMappings: ids on the
// 9p shares are the host's (as Podman's mapping leaves them), and the container sees them through
// the mapping, as under runc. Made by the agent before the container's init enters it, because a
// process inside it could no longer mount the shares or create the namespace from its chroot.
#pragma once

#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::agent {

// Whether the spec asks for a user namespace with mappings (else the container shares the
// guest's own ids).
bool wants_user_namespace(const oci::Spec& spec);

// A new user namespace with the spec's mappings written, as a descriptor to setns() into.
Result<UniqueFd> make_user_namespace(const oci::Spec& spec);

// "0 100000 65536\n..." as /proc/PID/uid_map takes it.
std::string map_text(const std::vector<oci::IdMapping>& mappings);

}  // namespace vessel::agent

// Filesystems inside the guest: the agent's own (/proc, /sys, /dev) at boot, and a container's
// root: its 9p share, the spec's mounts under it, a minimal /dev, and the move to become "/".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/oci_spec.h"
#include "common/result.h"

namespace vessel::agent {

Result<void> mount_guest_filesystems();

// Runs in the container's new mount namespace; afterwards "/" is the container's root.
// `binds` says how each bind mount of the spec reaches the guest: {destination, content
// (base64) | share (a 9p tag), readonly}.
Result<void> enter_container_root(const oci::Spec& spec, const std::string& rootfs_tag,
                                  const nlohmann::json& binds);

}  // namespace vessel::agent

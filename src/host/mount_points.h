// The mount points of a read-only root filesystem: the guest cannot make the missing ones once
// the root is read-only, so they are made on the host first, as runc does before it makes the
// root read-only (each resolved inside the root: a symlink in the image cannot lead out of it).
// Used for the VM's own container (the shim) and for a pod member (the runtime).
#pragma once

#include <string>

#include "common/oci_spec.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel {

// The destination inside the root filesystem `root`, resolved as if it were /; nothing if it
// does not exist.
Result<UniqueFd> open_in_root(int root, const std::string& path);
// Makes each missing destination of the spec's mounts under spec.root_path: an empty file for a
// bind of a file, else a directory.
Result<void> make_mount_points(const oci::Spec& spec);

}  // namespace vessel

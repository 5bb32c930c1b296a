// The shim's pid is "the container" for Podman: `podman cp` and `podman top` enter the mount
// namespace of that pid. So the shim starts in new mount and pid namespaces (vessel create makes
// them) and, once the VM runs, makes the container's root filesystem, with the spec's bind mounts
// at their destinations, the root of its mount namespace. Nothing of the host is left in it: no
// /proc, no host directory but those the container already sees through 9p.
#pragma once

#include "common/oci_spec.h"
#include "common/result.h"

namespace vessel::shim {

// First thing in the shim: nothing it mounts may propagate to the host (the namespace it got
// from clone holds copies of the host's shared mounts). A no-op when the shim is not its pid 1.
Result<void> make_mounts_private();
// A /proc for the shim's own pid namespace, so that pids the shim gets from clone() and the
// /proc/PID paths it opens (QEMU's id maps) agree. A no-op when the shim is not its pid 1.
Result<void> mount_own_proc();
// Overlay volumes (`-v DIR:DEST:O`): runc mounts them; the guest cannot reach their host
// directories, so the shim mounts each, in its own mount namespace, at the merge directory
// Podman names as its source, and the mount becomes a bind of that directory, shared like any
// volume. Fails when the shim has no mount namespace of its own.
Result<void> mount_overlays(oci::Spec& spec);
// pivot_root into the container's root filesystem and its bind mounts.
Result<void> enter_container_view(const oci::Spec& spec);

}  // namespace vessel::shim

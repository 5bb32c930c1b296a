// Pods: a pod is one VM (docs/pods.md). The pod's first container, its sandbox (Podman's infra
// container, CRI's sandbox), boots the VM as any vessel container does; a container whose spec
// names a sandbox (Podman and CRI-O: io.kubernetes.cri-o.ContainerType "container" and
// io.kubernetes.cri-o.SandboxID; containerd's CRI: io.kubernetes.cri.container-type and
// io.kubernetes.cri.sandbox-id) is a member, created inside the sandbox's VM:
//
// - its root filesystem and its bind sources are cloned (open_tree) here, in the caller's mount
//   namespace, and attached in QEMU's own mount namespace under the pod's shares
//   (hypervisor::PodShare), so the running VM serves them over 9p without device hotplug;
// - a relay process (runtime/exec.h) hands the member's stdio to the sandbox's shim, which asks
//   the agent to create the container; the relay is the member's host process, the pid conmon
//   watches, and exits with the member's status;
// - start, kill, exec, ps and update go to the sandbox's shim naming the member.
//
// Deleting a member detaches its mounts from QEMU's namespace; the VM keeps running for the
// others. The sandbox's end stops the VM, and with it every member.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/oci_spec.h"
#include "common/result.h"
#include "host/process.h"
#include "runtime/container.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

// The sandbox a container's annotations name, when it is a pod member.
std::optional<std::string> sandbox_of(const std::map<std::string, std::string>& annotations);

// Creates `request` as a member of `sandbox`'s VM; the returned process is the member's relay.
// A failure leaves no relay, mount or state directory behind.
Result<ChildProcess> create_member(const StateStore& store, const CreateRequest& request,
                                   const std::string& bundle, const oci::Spec& spec,
                                   const std::string& sandbox);

// Detaches a deleted member's root filesystem and volumes from its sandbox's VM (nothing to do
// when the VM is gone).
void remove_member_mounts(const StateStore& store, const ContainerState& member);

}  // namespace vessel::runtime

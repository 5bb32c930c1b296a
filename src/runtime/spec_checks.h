// What runc refuses in a spec before anything starts, and what a VM cannot promise: each refusal
// one sentence with the spec's reason.
#pragma once

#include "common/oci_spec.h"
#include "common/result.h"

namespace vessel::runtime {

// Namespaces given by path: each must be a namespace of its type (the runtime spec's error). Only
// the network namespace can be joined: the VM's devices live in it. Every other namespace is the
// guest kernel's own, so joining one of the host's would be a promise the VM cannot keep.
Result<void> check_namespace_paths(const oci::Spec& spec);

// linux.sysctl, as runc validates it: a key must belong to a namespace the container has of its
// own (IPC for kernel.msg*, kernel.sem, kernel.shm* and fs.mqueue.*; network for net.*; UTS for
// kernel.domainname, while kernel.hostname conflicts with the spec's hostname field); any other
// key is not namespaced at all and refused.
Result<void> check_sysctls(const oci::Spec& spec);

}  // namespace vessel::runtime

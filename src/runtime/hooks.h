// OCI hooks, run on the host by the runtime with the container's state on stdin, as runc runs
// them: prestart and createRuntime once `create` has the container created, poststart after
// `start`, poststop when `delete` has removed it. createContainer and startContainer must run
// in the container's namespaces, which live in the VM: a spec that asks for them is refused.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/oci_spec.h"
#include "common/result.h"

namespace vessel::runtime {

// Fails with one sentence for createContainer and startContainer hooks.
Result<void> refuse_guest_hooks(const oci::Spec& spec);
// Runs each hook in order with `state` on its stdin; the first that fails (non-zero exit,
// timeout, cannot start) ends the run with its name, status and what it printed.
Result<void> run_hooks(const std::vector<oci::Hook>& hooks, const std::string& phase,
                       const std::string& state);

}  // namespace vessel::runtime

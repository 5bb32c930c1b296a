// The spec's seccomp profile (linux.seccomp, as Podman passes its default profile), compiled
// to a BPF program with libseccomp here, on the host, at native speed; the agent only loads it
// (compiling Podman's profile inside a TCG guest took ~50 ms of every start).
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace vessel::shim {

// The filter as raw sock_filter instructions; empty for a null or absent profile.
Result<std::string> compile_seccomp(const nlohmann::json& profile);

}  // namespace vessel::shim

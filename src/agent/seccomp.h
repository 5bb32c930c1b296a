// The spec's seccomp profile (linux.seccomp, as Podman passes its default profile), compiled
// with libseccomp and loaded into the calling process. no_new_privileges stays the spec's call.
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace vessel::agent {

// Does nothing for a null or absent profile.
Result<void> load_seccomp(const nlohmann::json& profile);

}  // namespace vessel::agent

// `vessel setup --user`: registers vessel in the user's Podman configuration
// ($XDG_CONFIG_HOME/containers/containers.conf or ~/.config/containers/containers.conf), the
// reference's "Add Kata Runtime to Podman configuration file" step, done for the user.
#pragma once

#include <string>

#include "common/result.h"

namespace vessel::runtime {

// Returns the updated configuration text for `existing` (possibly empty): vessel registered
// under [engine.runtimes] with the features Podman looks up by the runtime's name, and
// slirp4netns' own port forwarder chosen (rootlessport would dial the container's address
// inside the network namespace, where the VM cannot answer).
Result<std::string> register_runtime(const std::string& existing, const std::string& vessel_path,
                                     const std::string& source, bool make_default = false);

std::string user_containers_conf_path();

}  // namespace vessel::runtime

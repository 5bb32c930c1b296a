// `vessel setup --containerd`: registers vessel as a runtime handler of containerd's CRI plugin
// (the handler a Kubernetes RuntimeClass names), driven by containerd's own runc v2 shim with
// vessel as its BinaryName (docs/kubernetes.md).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::runtime {

inline constexpr const char* kContainerdConfig = "/etc/containerd/config.toml";

struct ContainerdRegistration {
  std::string text;                  // the updated configuration
  std::vector<std::string> changes;  // what changed besides the handler, one line each
};

// Returns the updated text of containerd's configuration `existing` (possibly empty: containerd's
// defaults) with the handler "vessel" (and, with make_default, vessel as the CRI's default
// runtime). A version 1 file is refused: its keys are not the ones written here.
Result<ContainerdRegistration> register_containerd_handler(const std::string& existing,
                                                           const std::string& vessel_path,
                                                           const std::string& source,
                                                           bool make_default);

}  // namespace vessel::runtime

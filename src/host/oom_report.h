// What the host hears when a container's memory limit kills it in the guest. The host's cgroup
// never sees that kill, so vessel says it the way each engine listens for one: conmon's `oom`
// file in the bundle (Podman's inspect then says OOMKilled), and, when containerd's runc v2 shim
// runs vessel, a TaskOOM event published to containerd as that shim does for a host OOM (the
// CRI then gives the container the reason OOMKilled).
#pragma once

#include <string>

namespace vessel {

// Failures are logged as warnings: the exit itself is still reported. `bundle_path` names the
// bundle (containerd's: STATE/io.containerd.runtime.v2.task/NAMESPACE/ID).
void report_oom_kill(int bundle_dir, const std::string& bundle_path,
                     const std::string& container_id);

// The TaskOOM event as containerd's `publish` reads it on stdin: a google.protobuf.Any of
// containerd.events.TaskOOM{container_id}.
std::string task_oom_event(const std::string& container_id);

}  // namespace vessel

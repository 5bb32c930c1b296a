// The OCI operations on one container, used by the thin command files: create boots the sandbox
// through a new shim and returns once the container is created; the others talk to that shim.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/oci_spec.h"
#include "common/result.h"
#include "host/process.h"
#include "runtime/config.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

struct CreateRequest {
  std::string id;
  std::string bundle;
  std::string pid_file;        // may be empty
  std::string console_socket;  // may be empty
  // Rootless Podman hands slirp4netns' exit pipe to create as fd 5; it must live as long as
  // the container. Decided by the caller before it opens any descriptor of its own.
  bool keep_fd5 = false;
};

// Whether this process inherited an open fd 5 (call before opening anything).
bool inherited_fd5();

// Creates the container; the returned process is its shim (release it to leave it running).
// A failure at any step leaves no shim, QEMU or state directory behind. Warnings (the TCG
// fallback) go to `warn`.
Result<ChildProcess> create_container(const StateStore& store, const Config& config,
                                      const CreateRequest& request,
                                      const std::function<void(const std::string&)>& warn);
// The last steps of create, for a container whose process (shim, or a pod member's relay) is
// `pid`: the state says created, the prestart and createRuntime hooks run, the pid file is
// written.
Result<void> record_created(const StateStore& store, ContainerState& state, pid_t pid,
                            const oci::Spec& spec, const std::string& pid_file);
// Warnings (a failed poststart or poststop hook) go to `warn`.
Result<void> start_container(const StateStore& store, const std::string& id,
                             const std::function<void(const std::string&)>& warn);
Result<void> kill_container(const StateStore& store, const std::string& id, int signal);
// Freezes the whole VM (QEMU stops running it) or lets it run again.
Result<void> pause_container(const StateStore& store, const std::string& id, bool pause);
// A created container's spec, read again from its bundle (its root filesystem is not checked:
// delete must work when it is gone). Its cgroupsPath is the VM's host cgroup (host_cgroup.h).
Result<oci::Spec> bundle_spec(const std::string& bundle);
// Sends new linux.resources (JSON) to the container's cgroup in the guest.
Result<void> update_container(const StateStore& store, const std::string& id,
                              const std::string& resources_json);
Result<void> delete_container(const StateStore& store, const std::string& id, bool force,
                              const std::function<void(const std::string&)>& warn);
// The OCI state document (`vessel state`).
Result<std::string> container_state_json(const StateStore& store, const std::string& id);

// Accepts "9", "KILL" and "SIGKILL".
Result<int> parse_signal(const std::string& text);

}  // namespace vessel::runtime

// Ending a container's shim and its VM whatever state the shim is in, for `delete --force`: the
// shim is asked to KILL, then killed; a shim that cannot run (frozen in a cgroup, where SIGKILL
// waits for a thaw) has its descendants (QEMU) killed without it and its cgroup thawed so that the
// kill lands. Fails, naming the shim, while it still lives: a container is never forgotten while
// its shim runs on.
#pragma once

#include <chrono>

#include "common/result.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

bool wait_until_gone(const ContainerState& state, std::chrono::milliseconds timeout);

Result<void> end_shim(const StateStore& store, const ContainerState& state);

}  // namespace vessel::runtime

// `vessel exec`: runs another process in a running container. A relay process hands its stdio
// (or a pty slave whose master went to --console-socket) to the shim, forwards the signals it
// receives, and exits with the exec'd process's status: its pid is the one conmon waits for.
#pragma once

#include <string>

#include "common/result.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

struct ExecRequest {
  std::string id;
  std::string process_json;  // an OCI process object
  std::string console_socket;
  std::string pid_file;
  bool detach = false;
};

// With detach, returns 0 once the process runs, leaving the relay behind (its pid in pid_file);
// otherwise relays in this process and returns the exec'd process's exit code.
Result<int> exec_in_container(const StateStore& store, const ExecRequest& request);

}  // namespace vessel::runtime

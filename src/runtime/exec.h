// `vessel exec`: runs another process in a running container. A relay process hands its stdio
// (or a pty slave whose master went to --console-socket) to the shim, forwards the signals it
// receives, and exits with the exec'd process's status: its pid is the one conmon waits for.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "common/result.h"
#include "host/control_messages.h"
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

// A relay in a child process: it connects to `socket`, sends `request` (an exec or a member) with
// its stdio (or, when the request asks for a terminal, a pty slave whose master goes to
// `console_socket`), and once the shim accepted, relays signals and window sizes until the exit
// code comes, then exits with it. Returns the relay's pid and the shim's answer; on a refusal the
// relay is gone and the error is the shim's. `on_exit` runs in the relay before it exits.
struct DetachedRelay {
  pid_t pid = -1;
  control::Reply answer;
};
Result<DetachedRelay> spawn_relay(const std::string& socket, const control::Request& request,
                                  const std::string& console_socket,
                                  const std::function<void(const control::Exited&)>& on_exit = {});

}  // namespace vessel::runtime

// The host side of a container's terminal: a pty whose master goes to conmon's console socket
// (as runc sends it) and whose slave the caller relays to the pty inside the guest.
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel {

// Makes the pty (raw: the guest's pty does the line discipline), sends the master to
// `console_socket`, and makes the slave the caller's controlling terminal so that conmon's
// resizes arrive as SIGWINCH. Returns the slave.
Result<UniqueFd> open_console_for(const std::string& console_socket);

}  // namespace vessel

#include "host/terminal.h"

#include <pty.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/sys.h"

namespace vessel {

Result<UniqueFd> open_console_for(const std::string& console_socket) {
  if (console_socket.empty())
    return fail("process.terminal is true but no --console-socket was given");
  int master = -1, slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) < 0) return fail_errno("openpty");
  UniqueFd master_fd(master), slave_fd(slave);
  termios mode{};
  ::tcgetattr(slave, &mode);
  ::cfmakeraw(&mode);
  ::tcsetattr(slave, TCSANOW, &mode);
  UniqueFd socket = TRY(sys::unix_connect(console_socket).map_error(context("console socket")));
  TRY(sys::send_fd(socket.get(), master, "/dev/ptmx"));
  ::setsid();
  ::ioctl(slave, TIOCSCTTY, 0);
  return slave_fd;
}

}  // namespace vessel

// vessel-agent: PID 1 of the guest. Mounts what the guest needs, opens the "vessel.0" port,
// serves the shim, and powers the VM off when done.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent/mounts.h"
#include "agent/server.h"
#include "common/log.h"
#include "common/sys.h"

using namespace vessel;

namespace {

constexpr const char* kPortName = "vessel.0";

// Without udev there is no /dev/virtio-ports/NAME: find the port whose sysfs name matches.
Result<UniqueFd> open_channel_port() {
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (DIR* dir = ::opendir("/sys/class/virtio-ports")) {
      while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        std::string port = entry->d_name;
        auto name = sys::read_file("/sys/class/virtio-ports/" + port + "/name", 256);
        if (name && (*name == kPortName || *name == std::string(kPortName) + "\n")) {
          ::closedir(dir);
          return sys::open("/dev/" + port, O_RDWR);
        }
      }
      ::closedir(dir);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fail(ENOENT, std::string("no virtio port named ") + kPortName);
}

[[noreturn]] void power_off() {
  ::sync();
  ::reboot(RB_POWER_OFF);
  for (;;) ::pause();
}

}  // namespace

int main() {
  log::init("vessel-agent", 2, log::Level::Info);
  if (auto mounted = agent::mount_guest_filesystems(); !mounted)
    log::error(mounted.error().message);
  // The kernel found no /dev/console in the initramfs to give us: take the serial console now.
  if (auto console = sys::open("/dev/console", O_RDWR | O_NOCTTY); console) {
    for (int fd = 0; fd < 3; ++fd) ::dup2(console->get(), fd);
  }
  // `vessel check` boots the guest with vessel.probe to learn whether this host's accelerator
  // runs it at all: reaching this point is the answer.
  auto cmdline = sys::read_file("/proc/cmdline", 4096).value_or("");
  if (cmdline.find(" vessel.probe") != std::string::npos) {
    ::dprintf(1, "vessel-probe: the guest runs\n");
    power_off();
  }
  // The agent relays the container's output: woken by each write into its pipe it would preempt
  // the writer every 64 KiB, and under emulation each switch between them costs a flush of
  // the emulated TLB. As a batch task it keeps its fair share but waits for the writer to
  // block or use up its slice; what it starts runs under the normal policy again.
  sched_param batch{};
  (void)::sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &batch);
  auto port = open_channel_port();
  if (!port) {
    log::error(port.error().message);
    power_off();
  }
  if (auto served = agent::serve(std::move(*port)); !served) log::error(served.error().message);
  power_off();
}

// The Hypervisor interface: boots one VM for one sandbox and owns its lifetime.
// The shim fills a VmConfig, calls start(), and destroys the object to stop the VM; it knows
// nothing of QEMU. QemuHypervisor (qemu/qemu.h) is the implementation.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::hypervisor {

enum class Accel { Auto, Kvm, Tcg };

// QEMU's -machine for a machine type: microvm without the legacy devices vessel's guest does
// not use, but with the serial console and the RTC.
inline std::string machine_argument(const std::string& machine_type) {
  return machine_type == "microvm" ? machine_type + ",pit=off,pic=off,isa-serial=on,rtc=on"
                                   : machine_type;
}

// What the guest's files may be on the host through a share. Either way owners and permission
// bits are the guest's (passthrough, as with runc) and no device node is made (qemu/jail.h).
enum class Ownership {
  Host,     // setuid and setgid bits too: the container's root filesystem and pod members' roots
  Guarded,  // never a setuid or setgid bit (EPERM): volumes and bound files (qemu/setuid_guard.h)
};

// A host directory shared with the guest over virtio-9p, mounted there by its tag.
struct Share {
  std::string tag;
  std::string host_path;
  bool readonly = false;
  Ownership ownership = Ownership::Host;
  int fd = -1;  // the directory, opened by the caller without following symlinks; else host_path
};

// A host file shared with the guest: all of them are served by one 9p share, kFilesShareTag,
// whose root holds those files alone (as 0, 1, ... in order), never their siblings.
struct SharedFile {
  std::string host_path;
  bool readonly = false;
  int fd = -1;  // opened by the caller without following symlinks
};
inline constexpr const char* kFilesShareTag = "files";

// A pod's share (docs/pods.md): an empty directory of QEMU's own (a small tmpfs its jail makes),
// served over virtio-9p, into which the runtime mounts pod members' root filesystems and
// volumes while the VM runs, in QEMU's mount namespace, at jail_pod_share_path(tag)/NAME.
struct PodShare {
  std::string tag;
  Ownership ownership = Ownership::Host;
};
inline std::string jail_pod_share_path(const std::string& tag) { return "/vessel/pod/" + tag; }

// A host directory that is an entry of a pod share's root from the start, NAME in the share: the
// container's own volumes, in the pod volume share, so that every VM has the same devices
// whatever its volumes (a template's, shim/template.h). Names start with '@', which no member's
// entry (a container id, or ID@N) does.
struct PodShareEntry {
  std::string share;  // the pod share's tag
  std::string name;
  std::string host_path;
  bool readonly = false;
  int fd = -1;  // the directory, opened by the caller without following symlinks
};

// A network card backed by a tap the caller opened (in the container's network namespace), or
// by nothing at all (tap_fd < 0): a template's card, whose backend the restored VM brings.
struct Nic {
  int tap_fd = -1;
  std::string mac;
};

struct VmConfig {
  std::string name;
  std::string hypervisor_path;  // e.g. /usr/bin/qemu-system-x86_64
  std::string kernel;
  std::string initrd;
  std::string machine_type = "microvm";
  std::string kernel_params;  // appended to vessel's own command line
  unsigned vcpus = 1;
  unsigned memory_mib = 256;
  Accel accel = Accel::Tcg;  // resolved: never Auto here
  uint64_t tsc_khz = 0;      // the host TSC rate, needed by a guest under TCG
  std::vector<Share> shares;
  std::vector<SharedFile> files;
  std::vector<PodShare> pod_shares;
  std::vector<PodShareEntry> pod_entries;
  std::vector<Nic> nics;
  int agent_fd = -1;    // connected stream socket: the guest's "vessel.0" port
  int console_fd = -1;  // connected stream socket: the guest's serial console
  int log_fd = -1;      // QEMU's own stdout and stderr
  // Restores the VM saved on this descriptor (a template, shim/template.h) instead of booting
  // the kernel: the devices above must be those the saved VM had, in the same order.
  int incoming_fd = -1;
  bool monitor = false;  // QEMU's monitor (QMP) on a socket of the Hypervisor's, to save the VM
  // Caps QEMU's TCG translation cache (MiB): the code it holds is mostly the boot's, and dead.
  unsigned tcg_cache_mib = 16;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;  // stops the VM if it still runs
  virtual Result<void> start(const VmConfig& config) = 0;
  virtual pid_t pid() const = 0;
  // Reaps the VM process if it has exited: its wait status then.
  virtual Result<std::optional<int>> try_wait() = 0;
  // Asks the VM to stop, then kills it if it has not after the grace period.
  virtual void stop() = 0;
  // Writes the running VM's whole state to `fd` (needs monitor_fd); the VM is stopped after.
  virtual Result<void> save(int fd) = 0;
  // Zeroes the guest's free memory through its balloon, so that a save holds none of it (needs
  // monitor_fd); a VM without a balloon is left as it is.
  virtual Result<void> scrub_free_memory() = 0;
  // Readable when the VMM waits for a decision on a guarded share's file; -1 when none can come.
  // serve_guard() answers one. Until it does, the VMM's thread waits.
  virtual int guard_fd() const = 0;
  virtual void serve_guard() = 0;
};

std::unique_ptr<Hypervisor> make_qemu();

}  // namespace vessel::hypervisor

#include "runtime/check.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "common/sys.h"
#include "host/process.h"
#include "hypervisor/accel.h"
#include "runtime/check_parts.h"

namespace vessel::runtime {

using namespace checks;

User checks::current_user() {
  User user{::getuid(), std::to_string(::getuid()), ""};
  if (const passwd* entry = ::getpwuid(user.uid)) {
    user.name = entry->pw_name;
    user.home = entry->pw_dir;
  }
  if (const char* home = std::getenv("HOME"); home && *home) user.home = home;
  return user;
}

namespace {

// "6.18.44-fc" → {6, 18}.
std::pair<int, int> major_minor(const std::string& version) {
  int major = 0, minor = 0;
  std::sscanf(version.c_str(), "%d.%d", &major, &minor);
  return {major, minor};
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

std::string group_name(gid_t gid) {
  const group* entry = ::getgrgid(gid);
  return entry ? entry->gr_name : std::to_string(gid);
}

bool in_group_now(gid_t gid) {
  if (::getegid() == gid) return true;
  std::vector<gid_t> groups(static_cast<size_t>(std::max(::getgroups(0, nullptr), 0)));
  int count = ::getgroups(static_cast<int>(groups.size()), groups.data());
  return std::find(groups.begin(), groups.begin() + std::max(count, 0), gid) !=
         groups.begin() + std::max(count, 0);
}

// Membership as /etc/group says (what a new login would get).
bool member_of(const User& user, gid_t gid) {
  if (const passwd* entry = ::getpwuid(user.uid); entry && entry->pw_gid == gid) return true;
  const group* entry = ::getgrgid(gid);
  if (!entry) return false;
  for (char** member = entry->gr_mem; member && *member; ++member)
    if (user.name == *member) return true;
  return false;
}

std::vector<Verdict> check_kvm(const User& user, bool& usable) {
  std::vector<Verdict> out;
  usable = false;
  const auto host = hypervisor::KvmHost::from_environment();
  const std::string& kvm = host.device;
  struct stat st;
  if (::stat(kvm.c_str(), &st) < 0) {
    out.push_back(warn(kvm,
                       "missing: " + hypervisor::kvm_unusable_reason(host).value_or("") +
                           ", so VMs run under TCG emulation",
                       "sudo modprobe kvm_intel (or kvm_amd); in a VM, enable nested "
                       "virtualization on its host"));
    return out;
  }
  std::string owner = "mode " + octal_mode(st.st_mode) + " root:" + group_name(st.st_gid);
  if (::access(kvm.c_str(), R_OK | W_OK) == 0) {
    out.push_back(ok(kvm, "present, readable and writable by you (" + owner + ")"));
    usable = true;
  } else if ((st.st_mode & 0060) != 0060) {
    out.push_back(warn(kvm, owner + ": only root may use it",
                       "sudo groupadd -f --system kvm && sudo chown root:kvm " + kvm +
                           " && sudo chmod 0660 " + kvm +
                           " (most distributions' udev rules do this)"));
  } else if (!member_of(user, st.st_gid)) {
    out.push_back(warn(
        "kvm group",
        user.name + " is not in the " + group_name(st.st_gid) + " group that owns " + kvm,
        "sudo usermod -aG " + group_name(st.st_gid) + " " + user.name + ", then log in again"));
  } else if (!in_group_now(st.st_gid)) {
    out.push_back(warn("kvm group",
                       user.name + " is in the " + group_name(st.st_gid) +
                           " group, but this login started before that",
                       "log in again (or run: newgrp " + group_name(st.st_gid) + ")"));
  } else {
    out.push_back(warn(kvm, owner + ", and you cannot open it for reading and writing",
                       "ls -l " + kvm + "; check ACLs and security modules"));
  }
  return out;
}

// Boots the real guest under KVM (a host's KVM may run a few instructions and still hang a
// kernel, as kvm_pvm does), and under TCG to say what the fallback costs here.
Verdict check_guest_accel(const CheckInputs& inputs, bool kvm_accessible) {
  const std::string cache = hypervisor::kvm_verdict_path(inputs.state_root);
  std::string verdict;
  // A host without a vendor module (kvm_pvm, say) is told so without a boot that would hang.
  std::optional<std::string> unusable;
  if (kvm_accessible)
    unusable = hypervisor::kvm_unusable_reason(hypervisor::KvmHost::from_environment());
  if (kvm_accessible && unusable) {
    verdict = *unusable;
  } else if (kvm_accessible) {
    auto booted = boot_guest_once(inputs.config, "kvm", inputs.probe_seconds, inputs.state_root);
    verdict = booted ? "usable" : "vessel's guest under KVM " + booted.error().message;
    // What create decides by from now on, until the host reboots (hypervisor/accel.h).
    if (::access(inputs.state_root.c_str(), W_OK) == 0)
      hypervisor::record_for_this_boot(cache, verdict);
    if (booted)
      return ok("KVM", "runs vessel's guest: it booted in " +
                           std::to_string(static_cast<int>(*booted * 1000)) + " ms");
  } else {
    verdict = "/dev/kvm cannot be used (see above)";
  }
  std::string tcg = "";
  auto emulated = boot_guest_once(inputs.config, "tcg", 60, inputs.state_root);
  if (emulated) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", *emulated);
    tcg = "; a boot takes " + std::string(seconds) +
          " s here, and code in the guest runs several times slower than under KVM";
  }
  return warn("KVM", verdict + ": VMs run under TCG emulation" + tcg,
              kvm_accessible ? "none on this host: use a host (or a nested VM) with hardware "
                               "virtualization to get KVM"
                             : "fix /dev/kvm above");
}

Verdict check_readable(const std::string& name, const std::string& path, const Config& config,
                       const std::string& key) {
  if (::access(path.c_str(), R_OK) == 0) return ok(name, path);
  bool exists = sys::exists(path);
  std::string where = config.origin.contains(key) ? config.origin.at(key) : config.source;
  return failed(
      name, path + (exists ? " is not readable by you" : " does not exist"),
      exists ? "sudo chmod a+r " + path
             : "make guest (or set " + key + " in " +
                   (where == "built-in defaults" ? "/etc/vessel/configuration.toml" : where) + ")");
}

Verdict check_qemu(const Config& config) {
  if (::access(config.hypervisor_path.c_str(), X_OK) != 0)
    return failed("QEMU", config.hypervisor_path + " is missing",
                  "sudo apt install qemu-system-x86 (or set hypervisor.qemu.path)");
  auto version = capture_output({config.hypervisor_path, "--version"});
  std::string text = version ? *version : "";
  size_t at = text.find("version ");
  std::string number = at == std::string::npos
                           ? ""
                           : text.substr(at + 8, text.find_first_of(" \n(", at + 8) - at - 8);
  auto [major, minor] = major_minor(number);
  if (major < 5 || (major == 5 && minor < 2))
    return failed("QEMU",
                  config.hypervisor_path + " is version " + (number.empty() ? "unknown" : number) +
                      "; vessel needs 5.2 or later (microvm, -sandbox)",
                  "sudo apt install qemu-system-x86 from a newer release");
  return ok("QEMU", config.hypervisor_path + " " + number + " (5.2 or later)");
}

Verdict check_host_kernel() {
  utsname name{};
  ::uname(&name);
  auto [major, minor] = major_minor(name.release);
  if (major < 4 || (major == 4 && minor < 14))
    return failed("host kernel", std::string(name.release) + " is older than 4.14",
                  "upgrade the host's kernel");
  return ok("host kernel", std::string(name.release) + " (4.14 or later)");
}

Verdict check_selinux() {
  auto enforce = sys::read_file("/sys/fs/selinux/enforce", 16);
  if (!enforce) return ok("SELinux", "not enabled");
  if (enforce->starts_with("0")) return ok("SELinux", "permissive");
  return warn("SELinux", "enforcing; vessel has not been tested under it",
              "if a container cannot read its files, run it with --security-opt label=disable");
}

// QEMU's command line for booting vessel's guest with vessel.probe under `accel`.
std::vector<std::string> probe_argv(const Config& config, const std::string& accel,
                                    const std::string& state_root) {
  std::string machine = hypervisor::machine_argument(config.machine_type);
  std::string append = "console=ttyS0 quiet panic=-1 vessel.probe";
  if (accel == "tcg")
    append +=
        " tsc_early_khz=" + std::to_string(hypervisor::host_tsc_khz(state_root)) + " tsc=reliable";
  std::vector<std::string> argv = {config.hypervisor_path,
                                   "-machine",
                                   machine,
                                   "-accel",
                                   accel,
                                   "-m",
                                   "256",
                                   "-smp",
                                   "1",
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-no-reboot",
                                   "-kernel",
                                   config.kernel,
                                   "-initrd",
                                   config.initrd,
                                   "-append",
                                   append,
                                   "-serial",
                                   "stdio"};
  if (accel == "kvm") argv.insert(argv.end(), {"-cpu", "host"});
  return argv;
}

// QEMU's own complaint: its first error line, else its last line.
std::string qemu_complaint(const std::string& output) {
  std::istringstream lines(output);
  std::string line, complaint;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.find("error") != std::string::npos) {
      complaint = line;
      break;
    }
    complaint = line;
  }
  if (size_t at = complaint.find("error: "); at != std::string::npos)
    complaint = complaint.substr(at + 7);
  return complaint;
}

// Reads the guest's console from `output_fd` until the probe's line shows (the seconds since
// `started`), QEMU stops, or `timeout_seconds` have passed.
Result<double> wait_for_probe(int output_fd, std::chrono::steady_clock::time_point started,
                              int timeout_seconds) {
  std::string seen;
  auto deadline = started + std::chrono::seconds(timeout_seconds);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return fail(ETIMEDOUT,
                  "hung: no sign of the guest within " + std::to_string(timeout_seconds) + " s");
    pollfd poll_fd{output_fd, POLLIN, 0};
    if (::poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(output_fd, buffer, sizeof buffer);
    if (n <= 0) break;
    seen.append(buffer, static_cast<size_t>(n));
    if (seen.size() > (1 << 20)) seen.erase(0, seen.size() - 4096);
    if (seen.find("vessel-probe: the guest runs") != std::string::npos)
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  return fail(EIO, "failed: QEMU stopped before the guest ran (" +
                       qemu_complaint(seen).substr(0, 160) + ")");
}

}  // namespace

Result<double> boot_guest_once(const Config& config, const std::string& accel, int timeout_seconds,
                               const std::string& state_root) {
  std::vector<std::string> argv = probe_argv(config, accel, state_root);
  auto output = TRY(sys::pipe());
  UniqueFd null = TRY(sys::open("/dev/null", O_RDWR));
  SpawnOptions options;
  options.argv = std::move(argv);
  options.fds = {{0, null.get()}, {1, output.write.get()}, {2, output.write.get()}};
  options.die_with_parent = true;
  auto started = std::chrono::steady_clock::now();
  ChildProcess qemu = TRY(ChildProcess::spawn(options));
  output.write.reset();
  return wait_for_probe(output.read.get(), started, timeout_seconds);
}

std::vector<Verdict> run_checks(const CheckInputs& inputs) {
  std::vector<Verdict> out;
  User user = current_user();
  out.push_back(check_host_kernel());
  bool kvm_accessible = false;
  for (auto& verdict : check_kvm(user, kvm_accessible)) out.push_back(std::move(verdict));
  Verdict qemu = check_qemu(inputs.config);
  Verdict kernel =
      check_readable("guest kernel", inputs.config.kernel, inputs.config, "hypervisor.qemu.kernel");
  Verdict initrd =
      check_readable("guest initrd", inputs.config.initrd, inputs.config, "hypervisor.qemu.initrd");
  bool can_boot =
      qemu.status == Status::Ok && kernel.status == Status::Ok && initrd.status == Status::Ok;
  out.push_back(std::move(qemu));
  out.push_back(std::move(kernel));
  out.push_back(std::move(initrd));
  if (can_boot && inputs.boot_probes) out.push_back(check_guest_accel(inputs, kvm_accessible));
  out.push_back(ok("vhost-net",
                   std::string(sys::exists("/dev/vhost-net") ? "present, and " : "absent, and ") +
                       "not needed: vessel relays the network in user space"));
  out.push_back(check_selinux());
  if (user.uid != 0)
    for (auto& verdict : check_rootless(user)) out.push_back(std::move(verdict));
  for (auto& verdict : check_podman(user)) out.push_back(std::move(verdict));
  return out;
}

}  // namespace vessel::runtime

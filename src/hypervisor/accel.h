// Choosing the accelerator: KVM only when /dev/kvm can really run a guest (checked by running
// a few instructions in a throwaway VM, not by the device's mere existence), TCG otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "hypervisor/hypervisor.h"

namespace vessel::hypervisor {

struct AccelChoice {
  Accel accel;
  std::string warning;  // set when Auto fell back to TCG: one line saying why
};

// Where this host's KVM is looked for: its device and the kernel's module directory (a module
// built in shows there too). Tests name a tree of their own with VESSEL_KVM_DEVICE and
// VESSEL_SYS_MODULE; QEMU itself always opens /dev/kvm.
struct KvmHost {
  std::string device = "/dev/kvm";
  std::string modules = "/sys/module";
  static KvmHost from_environment();
  bool loaded(const std::string& module) const;
};

// Why KVM cannot run vessel's guest on `host`, in words true of that host (no device, a device
// without a vendor module, kvm_pvm, no permission), or nothing if it can: with a device and a
// vendor module, runs a real-mode "out; hlt" guest to be sure.
std::optional<std::string> kvm_unusable_reason(const KvmHost& host);

// A fact that holds until the host reboots (the KVM verdict, the TSC rate): kept in `path` as
// "<boot id>\n<value>", and computed again only after a reboot.
std::string for_this_boot(const std::string& path, const std::function<std::string()>& compute);
// Replaces such a fact (`vessel check` records what booting the real guest showed).
void record_for_this_boot(const std::string& path, const std::string& value);

// Resolves `requested`; the probe's verdict is cached in kvm_verdict_path(cache_dir) for this
// boot of the host ("usable", or why not). `vessel check` replaces it with the verdict of booting
// the real guest, which the quick probe cannot always foresee (kvm_pvm runs it but hangs the
// guest), and so does a shim whose QEMU could not start under KVM after all.
Result<AccelChoice> choose_accel(Accel requested, const std::string& cache_dir);
std::string kvm_verdict_path(const std::string& cache_dir);
// The one warning line of a VM that runs under TCG because KVM cannot (`reason`).
std::string tcg_warning(const std::string& reason);

// The host's TSC rate, measured against CLOCK_MONOTONIC_RAW; TCG guests see the host's TSC.
uint64_t measure_tsc_khz();
// The same, measured once per boot of the host and cached in cache_dir.
uint64_t host_tsc_khz(const std::string& cache_dir);

}  // namespace vessel::hypervisor

// Choosing the accelerator: KVM only when /dev/kvm can really run a guest (checked by running
// a few instructions in a throwaway VM, not by the device's mere existence), TCG otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"
#include "hypervisor/hypervisor.h"

namespace vessel::hypervisor {

struct AccelChoice {
  Accel accel;
  std::string warning;  // set when Auto fell back to TCG: one line saying why
};

// Runs a real-mode "out; hlt" guest on /dev/kvm. Returns why KVM is unusable, or nothing if usable.
std::optional<std::string> kvm_unusable_reason();

// Resolves `requested`; the probe's verdict is cached in cache_dir for this boot of the host.
Result<AccelChoice> choose_accel(Accel requested, const std::string& cache_dir);

// The host's TSC rate, measured against CLOCK_MONOTONIC_RAW; TCG guests see the host's TSC.
uint64_t measure_tsc_khz();
// The same, measured once per boot of the host and cached in cache_dir.
uint64_t host_tsc_khz(const std::string& cache_dir);

}  // namespace vessel::hypervisor

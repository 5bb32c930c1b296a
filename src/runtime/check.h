// `vessel check`: every manual step of the rootless Kata walkthrough (docs/reference) as a verdict
// with its fix. A ✘ is something that keeps vessel from running containers under Podman for this
// user; a ! is something that works but is slower or less convenient than it could be (KVM
// unusable, vessel not the default runtime).
#pragma once

#include <string>
#include <vector>

#include "runtime/config.h"

namespace vessel::runtime {

struct Verdict {
  enum class Status { Ok, Warn, Fail };
  Status status = Status::Ok;
  std::string name;    // "/dev/kvm", "QEMU", ...
  std::string detail;  // one sentence
  std::string fix;     // the command that fixes it (for Warn and Fail)
};

struct CheckInputs {
  Config config;
  std::string state_root;   // where per-boot verdicts are cached
  int probe_seconds = 30;   // how long a guest may take to boot under KVM before it counts as hung
  bool boot_probes = true;  // false: judge KVM by /dev/kvm alone (no VM is booted)
};

std::vector<Verdict> run_checks(const CheckInputs& inputs);

// Boots vessel's guest under `accel` ("kvm" or "tcg") with vessel.probe, which makes the agent
// print a line and power off. Returns the seconds it took, or why it did not boot in time.
Result<double> boot_guest_once(const Config& config, const std::string& accel, int timeout_seconds,
                               const std::string& state_root);

}  // namespace vessel::runtime

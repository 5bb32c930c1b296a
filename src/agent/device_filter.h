// linux.resources.devices in the guest: cgroup v2 has no devices.allow file, only an eBPF program
// of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup, consulted on every open
// and mknod of a device node (as runc's devicefilter does on the host). The rules are looked at
// last first; the first that matches the device's type, numbers and access decides; a device no
// rule matches is denied, as under runc.
#pragma once

#include <linux/bpf.h>

#include <vector>

#include "common/oci_spec.h"
#include "common/result.h"

namespace vessel::agent {

// The rules runc enforces for `spec`: linux.resources.devices, then an allow of every
// linux.devices node, then runc's own defaults (mknod of any device; null, zero, full, random,
// urandom, tty, ptmx, the pts and tun/tap), which come last and so win; with no rule in the spec,
// a container gets those defaults and its own linux.devices, as under runc.
std::vector<oci::DeviceRule> effective_device_rules(const oci::Spec& spec);

// The program for `rules` (pure: tested on its own).
std::vector<bpf_insn> device_program(const std::vector<oci::DeviceRule>& rules);

// Loads the program for `rules` and attaches it to the cgroup directory `cgroup_fd`.
Result<void> attach_device_filter(int cgroup_fd, const std::vector<oci::DeviceRule>& rules);

}  // namespace vessel::agent

// VM templates (docs/templates.md), Kata's "factory": a guest booted once to the point where its
// agent waits for a container, saved with QEMU's migration into a file, and restored for each
// container with the container's own backends behind the same devices (its root filesystem
// share, its tap, its agent socket), so that a start loads memory instead of booting a kernel.
//
// A template is keyed by everything that shapes the saved VM (QEMU's command line for it, which
// holds the machine, memory, vCPUs, accelerator and kernel command line; the identity of QEMU's
// binary, the guest kernel and initrd; this build's agent protocol) and named by that key's hash;
// its first line holds the key itself, so a template made for anything else is stale. Templates
// are written by a builder process (`vessel-shim --build-template`) that `vessel create` starts
// in the background after a start that found none, never on the user's critical path.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/channel/host_messages.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "hypervisor/hypervisor.h"

namespace vessel::shim {

// The VM `vm` is as its template was saved: the same devices with no container behind them.
// None when `vm` cannot come from a template: it serves volumes (each its own device), or has no
// network card or several.
std::optional<hypervisor::VmConfig> template_shape(const hypervisor::VmConfig& vm);

// The key of the template for `shape`; fails when QEMU, the kernel or the initrd cannot be read.
Result<std::string> template_key(const hypervisor::VmConfig& shape);
std::string template_file(const std::string& dir, const std::string& key);

// The template saved for `key`, its descriptor at the start of QEMU's stream. ENOENT when there
// is none, ESTALE when the file there was saved for another key, EPERM when the directory or the
// file is not the user's own (QEMU loads a template's memory and device state unchecked): the
// directory must not be a link and have mode 0700, the file be regular with one link and mode
// 0600, both owned by the user.
Result<UniqueFd> open_template(const std::string& dir, const std::string& key);

// What the builder needs to make the template for `shape` in `dir`.
nlohmann::json template_build_request(const hypervisor::VmConfig& shape, const std::string& dir,
                                      const std::string& key);

// `vessel-shim --build-template REQUEST`: boots the shape, readies the guest, saves it. Returns
// the exit code. Another builder of the same template already at work makes this one a no-op.
int build_template(const nlohmann::json& request);

// Removes the templates in `dir` that can never be used again (their key names a QEMU, kernel or
// initrd that has changed since), and the oldest beyond a few: each holds tens of MiB; and the
// lock files no builder holds, and the scratch directories of builders killed long ago.
void remove_stale_templates(const std::string& dir);

// The message a restored guest gets first: fresh entropy and its cards' MACs.
channel::from_host::Resume resume_message(const hypervisor::VmConfig& vm);
// The host's time now, for a restored guest once it answered the resume.
channel::from_host::SetClock clock_message();

}  // namespace vessel::shim

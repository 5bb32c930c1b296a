// A guest booted to be a template (shim/template.h): readied to be saved, and on each restore
// made its own before anything else runs in it: fresh entropy from the host mixed into the
// kernel's pool and the CRNG reseeded at once, the host's wall-clock time, and the MAC of the
// container's network card (the saved card has the template's).
#pragma once

#include <string>
#include <vector>

#include "agent/network.h"
#include "common/channel/host_messages.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::agent {

// What a clone's resume needs, opened and found before the save: a restored guest runs every
// kernel path for the first time, each translated afresh under TCG, and listing the cards
// through sysfs alone then took ~23 ms of the time to `hello`. The VM's devices are part of
// its template's key, so the cards found here are every clone's.
struct TemplateState {
  UniqueFd random;                 // /dev/urandom, for RNDADDENTROPY and RNDRESEEDCRNG
  std::vector<std::string> cards;  // network_cards()
};

// Gives back to the host what it can before the guest is saved (caches dropped, free memory
// compacted into the blocks the balloon reports), readies the resume, and makes the first
// container's cgroup.
Result<TemplateState> prepare_for_template();

// Fresh entropy mixed in and the CRNG reseeded, then the cards given their MACs.
Result<KnownCards> resume_from_template(const channel::from_host::Resume& message,
                                        const TemplateState& state);

// The host's time, sent once the restored guest runs (a resume is queued while QEMU is still
// loading the template, which may take seconds).
Result<void> set_clock(const channel::from_host::SetClock& message);

}  // namespace vessel::agent

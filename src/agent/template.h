// A guest booted to be a template (shim/template.h): readied to be saved, and on each restore
// made its own before anything else runs in it: fresh entropy from the host mixed into the
// kernel's pool and the CRNG reseeded at once, the host's wall-clock time, and the MAC of the
// container's network card (the saved card has the template's).
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace vessel::agent {

// Gives back to the host what it can before the guest is saved: caches dropped, free memory
// compacted into the blocks the balloon reports.
void prepare_for_template();

// {"type":"resume","entropy":BASE64,"realtime_ns":N,"macs":[...]}.
Result<void> resume_from_template(const nlohmann::json& message);

}  // namespace vessel::agent

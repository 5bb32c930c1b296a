// Loads a seccomp filter the shim compiled (raw BPF instructions) into the calling process.
#pragma once

#include <string_view>

#include "common/result.h"

namespace vessel::agent {

// Does nothing for an empty program; the program's size is checked before use.
Result<void> load_seccomp(std::string_view program);

}  // namespace vessel::agent

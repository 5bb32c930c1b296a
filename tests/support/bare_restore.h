// A bare QEMU restoring a VM template, and a process's proportional set size: the yardstick
// of an idle restored VM's memory (tests/integration/templates_test.cc).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "support/harness.h"

namespace vessel::test {

// The Pss of process `pid` in KiB, from /proc/PID/smaps_rollup; 0 where it cannot be read.
size_t pss_kib(const std::string& pid);

// A bare QEMU with the restored container's own argv and neutral backends (the console into
// /dev/null, the card on an unconnected UDP socket, the shares on an empty directory, an agent
// port nobody answers), restoring the same template without a jail or a shim: what the same
// virtual hardware costs on this host, so that vessel's cost is a ratio to it (as make bench's).
// Both are read while both run: they share QEMU's binary and libraries, half each.
class BareRestore {
 public:
  BareRestore(const std::string& qemu_pid, const std::string& template_file);
  ~BareRestore();
  size_t pss() const { return m_pid > 0 ? pss_kib(std::to_string(m_pid)) : 0; }

 private:
  TempDir m_empty;
  pid_t m_pid = -1;
  int m_agent = -1;
};

}  // namespace vessel::test

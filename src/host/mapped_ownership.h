// Volumes written by vessel before volumes kept the guest's owners (docs/security.md): QEMU's
// mapped-xattr model left every file root's, mode 0600 or 0700, with its owner, group, mode and
// type in user.virtfs.* extended attributes (a symlink, a FIFO or a device as a plain file).
// `vessel migrate-volume DIR` gives each file what its attributes say, without what a volume must
// never hold: setuid and setgid bits are dropped, and a device node or a socket stays a plain
// file. Host-only.
#pragma once

#include <string>

#include "common/result.h"

namespace vessel {

// Whether the directory `fd` (any open descriptor, O_PATH included) or one of its first 64
// entries carries mapped ownership.
bool holds_mapped_ownership(int fd);

struct MigrationReport {
  size_t migrated = 0;       // files given their owner, group and mode
  size_t setid_dropped = 0;  // of which setuid or setgid bits were dropped
  size_t left_plain = 0;     // devices and sockets, left plain files
};

// Walks `dir` without following a link, one descriptor per level; as root.
Result<MigrationReport> migrate_volume(const std::string& dir);

}  // namespace vessel

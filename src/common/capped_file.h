// CappedFile: an append-only log file in a directory that never grows past a fixed size. When the
// current file reaches half the cap it becomes NAME.1 (replacing the older one) and a new NAME
// starts, so the newest output is always kept and the pair stays under the cap. It works through
// a directory descriptor, so it keeps working after the process has left the host's mounts.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel {

class CappedFile {
 public:
  CappedFile() = default;
  // Creates (or truncates) dir/name, never through a symlink.
  static Result<CappedFile> create(int dir, std::string name, size_t cap_bytes);

  void write(std::string_view data);
  bool valid() const { return m_fd.valid(); }
  int fd() const { return m_fd.get(); }

 private:
  UniqueFd m_dir;
  std::string m_name;
  UniqueFd m_fd;
  size_t m_cap = 0;
  size_t m_size = 0;
};

}  // namespace vessel

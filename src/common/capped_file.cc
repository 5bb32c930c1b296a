#include "common/capped_file.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/sys.h"

namespace vessel {

static Result<UniqueFd> open_new(int dir, const std::string& name) {
  ::unlinkat(dir, name.c_str(), 0);
  UniqueFd fd(::openat(dir, name.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create " + name);
  return fd;
}

Result<CappedFile> CappedFile::create(int dir, std::string name, size_t cap_bytes) {
  CappedFile file;
  file.m_dir = UniqueFd(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (!file.m_dir) return fail_errno("dup");
  file.m_fd = TRY(open_new(dir, name));
  file.m_name = std::move(name);
  file.m_cap = cap_bytes;
  return file;
}

void CappedFile::write(std::string_view data) {
  if (!m_fd) return;
  size_t half = m_cap / 2;
  if (data.size() > half) data = data.substr(data.size() - half);  // only the newest fits
  if (m_size + data.size() > half) {
    std::string older = m_name + ".1";
    if (::renameat(m_dir.get(), m_name.c_str(), m_dir.get(), older.c_str()) < 0) {
      m_fd.reset();  // something odd happened to the directory: stop writing rather than grow
      return;
    }
    auto fresh = open_new(m_dir.get(), m_name);
    if (!fresh) {
      m_fd.reset();
      return;
    }
    m_fd = std::move(*fresh);
    m_size = 0;
  }
  if (sys::write_all(m_fd.get(), data)) m_size += data.size();
}

}  // namespace vessel

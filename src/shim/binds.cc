#include "shim/binds.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "common/base64.h"
#include "common/log.h"
#include "common/sys.h"

namespace vessel::shim {

namespace {
constexpr size_t kMaxBoundFile = 1 << 20;
}

bool is_bind(const oci::Mount& mount) {
  bool bind = mount.type == "bind";
  for (const auto& option : mount.options) bind |= option == "bind" || option == "rbind";
  return bind;
}

Result<UniqueFd> open_bind_source(const std::string& source) {
  UniqueFd fd = TRY(sys::open(source, O_PATH | O_NOFOLLOW).map_error(context("bind mount source")));
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return fail_errno("bind mount source " + source);
  if (S_ISLNK(st.st_mode))
    return fail(ELOOP, "bind mount source " + source +
                           " is a symbolic link: give the path of the file or directory it "
                           "points to");
  return fd;
}

Result<BindPlan> plan_binds(const oci::Spec& spec) {
  BindPlan plan;
  for (const auto& mount : spec.mounts) {
    if (!is_bind(mount)) continue;
    bool readonly = false;
    for (const auto& option : mount.options) readonly |= option == "ro";
    UniqueFd source = TRY(open_bind_source(mount.source));
    struct stat st;
    if (::fstat(source.get(), &st) < 0) return fail_errno("bind mount source " + mount.source);
    std::string by_fd = "/proc/self/fd/" + std::to_string(source.get());
    if (S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) <= kMaxBoundFile) {
      std::string content =
          TRY(sys::read_file(by_fd, kMaxBoundFile).map_error(context(mount.source)));
      plan.binds.push_back({{"destination", mount.destination},
                            {"content", base64_encode(content)},
                            {"readonly", readonly}});
    } else if (S_ISDIR(st.st_mode)) {
      std::string tag = "volume" + std::to_string(plan.volumes.size());
      plan.volumes.push_back(
          {tag, mount.source, readonly, hypervisor::Ownership::Mapped, source.get()});
      plan.fds.push_back(std::move(source));
      plan.binds.push_back(
          {{"destination", mount.destination}, {"share", tag}, {"readonly", readonly}});
    } else {
      log::warning("leaving out bind mount " + mount.source + " on " + mount.destination +
                   ": not a file or directory");
    }
  }
  return plan;
}

}  // namespace vessel::shim

#include "shim/binds.h"

#include <cstdio>
#include <cstring>

#include "common/channel/messages.h"
#include "common/sys.h"

namespace vessel::shim {

using nlohmann::json;

bool ids_reach_host_root() {
  auto map = sys::read_file("/proc/self/uid_map", 65536);
  if (!map) return true;  // unknown: assume the worst
  unsigned long inside, outside, count;
  for (const char* line = map->c_str();
       std::sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3;) {
    if (outside == 0 && count > 0) return true;
    line = std::strchr(line, '\n');
    if (!line) break;
    ++line;
  }
  return false;
}

Result<BindPlan> plan_binds(const oci::Spec& spec) {
  BindPlan plan;
  const auto volume_ownership =
      ids_reach_host_root() ? hypervisor::Ownership::Mapped : hypervisor::Ownership::Host;
  plan.volume_ownership = volume_ownership;
  for (const auto& mount : spec.mounts) {
    if (!is_bind(mount)) continue;
    bool readonly = is_readonly(mount);
    UniqueFd source = TRY(open_bind_source(mount.source));
    json entry = {{"destination", mount.destination}, {"readonly", readonly}};
    switch (TRY(classify_bind(mount, source.get(), entry))) {
      case BindKind::File:
        entry["share"] = hypervisor::kFilesShareTag;
        entry["file"] = std::to_string(plan.files.size());
        plan.files.push_back({mount.source, readonly, source.get()});
        plan.fds.push_back(std::move(source));
        break;
      case BindKind::Directory:
        entry["share"] = channel::kPodVolumesTag;
        entry["path"] = "@" + std::to_string(plan.volumes.size());
        plan.volumes.push_back(
            {channel::kPodVolumesTag, entry["path"], mount.source, readonly, source.get()});
        plan.fds.push_back(std::move(source));
        break;
      case BindKind::GuestMade:
        break;
    }
    plan.binds.push_back(entry);
  }
  return plan;
}

}  // namespace vessel::shim

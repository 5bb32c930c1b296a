#include "shim/binds.h"

#include "common/channel/messages.h"
#include "common/log.h"
#include "common/sys.h"
#include "host/mapped_ownership.h"

namespace vessel::shim {

using nlohmann::json;

Result<BindPlan> plan_binds(const oci::Spec& spec) {
  BindPlan plan;
  for (const auto& mount : spec.mounts) {
    if (!is_bind(mount)) continue;
    bool readonly = is_readonly(mount);
    UniqueFd source = TRY(open_bind_source(mount.source));
    channel::GuestBind entry{mount.destination, readonly};
    switch (TRY(classify_bind(mount, source.get(), entry))) {
      case BindKind::File:
        entry.share = hypervisor::kFilesShareTag;
        entry.file = std::to_string(plan.files.size());
        plan.files.push_back({mount.source, readonly, source.get()});
        plan.fds.push_back(std::move(source));
        break;
      case BindKind::Directory:
        if (holds_mapped_ownership(source.get()))
          log::warning(mount.source +
                       " keeps its files' owners in user.virtfs.* attributes, as vessel wrote "
                       "volumes before: the container sees the host's owners; as root, `vessel "
                       "migrate-volume " +
                       mount.source + "` gives each file its own");
        entry.share = channel::kPodVolumesTag;
        entry.path = "@" + std::to_string(plan.volumes.size());
        plan.volumes.push_back(
            {channel::kPodVolumesTag, entry.path, mount.source, readonly, source.get()});
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

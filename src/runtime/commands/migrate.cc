#include <cstdio>

#include "host/mapped_ownership.h"
#include "runtime/commands/command.h"

namespace vessel::runtime {

// `migrate-volume DIR`: a volume an older vessel wrote keeps its files' owners in attributes
// (host/mapped_ownership.h); this gives each file its own, as root.
Result<int> command_migrate_volume(Context&, const Arguments& args) {
  ArgumentParser parser("migrate-volume", args);
  TRY(parser.parse({}, {}));
  if (parser.positional().size() != 1)
    return fail(
        "vessel migrate-volume: name the volume's host directory: vessel migrate-volume DIR");
  const std::string& dir = parser.positional()[0];
  MigrationReport report = TRY(migrate_volume(dir));
  std::printf(
      "%s: %zu files given the owner, group and mode containers gave them; %zu setuid or setgid "
      "bits dropped; %zu devices or sockets left plain files\n",
      dir.c_str(), report.migrated, report.setid_dropped, report.left_plain);
  return 0;
}

}  // namespace vessel::runtime

// Fuzzes parse_spec_text, which reads the config.json of a bundle.
// Checks: it returns a Spec or an error that names the file, and never throws; an accepted Spec
// has what the rest of vessel relies on (a program to run, absolute cwd and mount destinations).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/oci_spec.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vessel::oci;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = parse_spec_text(text, "config.json");
  if (!spec) {
    FUZZ_CHECK(spec.error().message.starts_with("config.json"), "an error that does not say where");
    return 0;
  }
  FUZZ_CHECK(!spec->process.args.empty(), "a spec without a program to run");
  FUZZ_CHECK(spec->process.cwd.starts_with('/'), "a relative process.cwd");
  for (const Mount& mount : spec->mounts)
    FUZZ_CHECK(mount.destination.starts_with('/'), "a relative mount destination");
  return 0;
}

#include "runtime/containerd_config.h"

#include <toml++/toml.h>

#include <sstream>

namespace vessel::runtime {

namespace {

constexpr const char* kCri = "io.containerd.grpc.v1.cri";

toml::table& table_at(toml::table& parent, const std::string& key) {
  if (!parent[key].is_table()) parent.insert_or_assign(key, toml::table{});
  return *parent[key].as_table();
}

}  // namespace

Result<ContainerdRegistration> register_containerd_handler(const std::string& existing,
                                                           const std::string& vessel_path,
                                                           const std::string& source,
                                                           bool make_default) {
  toml::table table;
  try {
    table = toml::parse(existing, source);
  } catch (const toml::parse_error& error) {
    return fail(source + " line " + std::to_string(error.source().begin.line) + ": " +
                std::string(error.description()) +
                ": fix it, then run vessel setup --containerd again");
  }
  ContainerdRegistration registration;
  if (table.empty()) {
    table.insert_or_assign("version", 2);
  } else if (table["version"].value<int64_t>() != 2) {
    return fail(source +
                " is containerd's configuration version 1 (no \"version = 2\"), whose keys "
                "vessel does not write: convert it (containerd config default prints version 2), "
                "then run vessel setup --containerd again");
  }
  // Debian's and Docker's packages may ship containerd with the CRI plugin turned off.
  if (auto* disabled = table["disabled_plugins"].as_array()) {
    auto before = disabled->size();
    for (size_t i = disabled->size(); i-- > 0;) {
      auto name = (*disabled)[i].value<std::string>();
      if (name == "cri" || name == kCri) disabled->erase(disabled->begin() + i);
    }
    if (disabled->size() != before)
      registration.changes.push_back("the CRI plugin was in disabled_plugins: it is turned on");
  }
  toml::table& containerd = table_at(table_at(table_at(table, "plugins"), kCri), "containerd");
  toml::table handler{
      {"runtime_type", "io.containerd.runc.v2"},
      // A pod sizes its VM with these (within vessel's enable_annotations and default_maxmemory).
      {"pod_annotations", toml::array{"io.katacontainers.config.hypervisor.*", "io.vessel.*"}},
      {"options", toml::table{{"BinaryName", vessel_path}}}};
  table_at(containerd, "runtimes").insert_or_assign("vessel", std::move(handler));
  if (make_default) {
    auto previous = containerd["default_runtime_name"].value_or(std::string("runc"));
    containerd.insert_or_assign("default_runtime_name", "vessel");
    if (previous != "vessel")
      registration.changes.push_back("the default runtime was \"" + previous +
                                     "\": it is \"vessel\"");
  }
  std::ostringstream out;
  out << table << "\n";
  registration.text = out.str();
  return registration;
}

}  // namespace vessel::runtime

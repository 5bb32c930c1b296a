#include "runtime/podman_config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <sstream>

namespace vessel::runtime {

namespace {

void add_to_list(toml::table& engine, const std::string& key, const std::string& value) {
  if (!engine[key].is_array()) engine.insert_or_assign(key, toml::array{});
  toml::array& list = *engine[key].as_array();
  for (const auto& item : list)
    if (item.value<std::string>() == value) return;
  list.push_back(value);
}

}  // namespace

std::string user_containers_conf_path() {
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config && *config)
    return std::string(config) + "/containers/containers.conf";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.config/containers/containers.conf";
}

Result<std::string> register_runtime(const std::string& existing, const std::string& vessel_path,
                                     const std::string& source, bool make_default) {
  toml::table table;
  try {
    table = toml::parse(existing, source);
  } catch (const toml::parse_error& error) {
    return fail(source + " line " + std::to_string(error.source().begin.line) + ": " +
                std::string(error.description()) + ": fix it, then run vessel setup --user again");
  }
  if (!table["engine"].is_table()) table.insert_or_assign("engine", toml::table{});
  toml::table& engine = *table["engine"].as_table();
  if (!engine["runtimes"].is_table()) engine.insert_or_assign("runtimes", toml::table{});
  engine["runtimes"].as_table()->insert_or_assign("vessel", toml::array{vessel_path});
  // Podman looks these up by the runtime's basename. Podman 4.3 reads the singular
  // runtime_supports_nocgroup (the man page's plural is ignored).
  for (const char* runtime : {"crun", "runc", "kata", "runsc", "youki", "krun", "vessel"})
    add_to_list(engine, "runtime_supports_json", runtime);
  for (const char* runtime : {"crun", "krun", "vessel"})
    add_to_list(engine, "runtime_supports_nocgroup", runtime);
  for (const char* runtime : {"kata", "krun", "vessel"})
    add_to_list(engine, "runtime_supports_kvm", runtime);
  add_to_list(engine, "network_cmd_options", "port_handler=slirp4netns");
  // The reference's optional step: vessel as the user's default OCI runtime.
  if (make_default) engine.insert_or_assign("runtime", "vessel");
  std::ostringstream out;
  out << table << "\n";
  return out.str();
}

}  // namespace vessel::runtime

#include <toml++/toml.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "common/sys.h"
#include "runtime/check_parts.h"
#include "runtime/podman_config.h"

namespace vessel::runtime::checks {

namespace {

std::string find_program(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"})
    if (::access((std::string(dir) + "/" + name).c_str(), X_OK) == 0)
      return std::string(dir) + "/" + name;
  return "";
}

// /etc/subuid or /etc/subgid: a range of at least 65536 ids for the user (by name or uid).
bool has_range(const std::string& file, const User& user) {
  auto text = sys::read_file(file, 1 << 20);
  if (!text) return false;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string who, start, count;
    if (!std::getline(fields, who, ':') || !std::getline(fields, start, ':') ||
        !std::getline(fields, count))
      continue;
    if ((who == user.name || who == std::to_string(user.uid)) && std::atol(count.c_str()) >= 65536)
      return true;
  }
  return false;
}

// Podman's containers.conf files, in the order Podman reads them (later ones win).
std::vector<std::string> containers_conf_files() {
  std::vector<std::string> files = {"/usr/share/containers/containers.conf",
                                    "/etc/containers/containers.conf"};
  files.push_back(user_containers_conf_path());
  if (const char* override_path = std::getenv("CONTAINERS_CONF"); override_path && *override_path)
    files = {override_path};
  return files;
}

// What the containers.conf files say about vessel, the last file that sets a key winning.
struct PodmanSettings {
  std::string registered_in;  // the file that registers vessel, if any
  std::string default_runtime = "runc";
  std::string tmp_dir;
};

// Reads every containers.conf there is; a file that does not parse is a failed verdict in `out`.
PodmanSettings read_containers_conf(std::vector<Verdict>& out) {
  PodmanSettings settings;
  for (const auto& file : containers_conf_files()) {
    auto text = sys::read_file(file, 1 << 20);
    if (!text) continue;
    toml::table table;
    try {
      table = toml::parse(*text, file);
    } catch (const toml::parse_error& error) {
      out.push_back(failed("containers.conf",
                           file + ":" + std::to_string(error.source().begin.line) + ": " +
                               std::string(error.description()),
                           "fix " + file));
      continue;
    }
    if (table["engine"]["runtimes"]["vessel"].is_array()) settings.registered_in = file;
    if (auto runtime = table["engine"]["runtime"].value<std::string>())
      settings.default_runtime = *runtime;
    if (auto dir = table["engine"]["tmp_dir"].value<std::string>()) settings.tmp_dir = *dir;
  }
  return settings;
}

Verdict check_tmp_dir(const User& user, const std::string& tmp_dir) {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  std::string dir = !tmp_dir.empty() ? tmp_dir
                    : runtime_dir && *runtime_dir
                        ? std::string(runtime_dir) + "/libpod/tmp"
                        : "/tmp/podman-run-" + std::to_string(user.uid) + "/libpod/tmp";
  // The directory or the nearest existing parent must be writable by the user.
  std::string probe = dir;
  while (!probe.empty() && !sys::exists(probe)) probe = probe.substr(0, probe.rfind('/'));
  if (probe.empty() || ::access(probe.c_str(), W_OK | X_OK) != 0)
    return failed("Podman tmp dir", dir + " cannot be created or written by you",
                  "set tmp_dir = \"$XDG_RUNTIME_DIR/libpod/tmp\" under [engine] in " +
                      user_containers_conf_path());
  return ok("Podman tmp dir", dir + " (usable)");
}

Verdict check_registries(const User& user) {
  std::string registries;
  for (const std::string& file : {user.home + "/.config/containers/registries.conf",
                                  std::string("/etc/containers/registries.conf")})
    if (registries.empty() && sys::exists(file)) registries = file;
  if (registries.empty())
    return warn("registries.conf",
                "missing: short image names (podman pull alpine) fail with \"no search "
                "registries are defined\"",
                "sudo apt install containers-common, or use full image names");
  return ok("registries.conf", registries);
}

}  // namespace

std::vector<Verdict> check_rootless(const User& user) {
  std::vector<Verdict> out;
  std::string newuidmap = find_program("newuidmap"), newgidmap = find_program("newgidmap");
  if (newuidmap.empty() || newgidmap.empty())
    out.push_back(failed("newuidmap, newgidmap", "missing: rootless Podman cannot map your ids",
                         "sudo apt install uidmap"));
  else
    out.push_back(ok("newuidmap, newgidmap", newuidmap + ", " + newgidmap));
  bool uids = has_range("/etc/subuid", user), gids = has_range("/etc/subgid", user);
  if (uids && gids)
    out.push_back(ok("subordinate ids", user.name + " has ranges in /etc/subuid and /etc/subgid"));
  else
    out.push_back(failed(
        "subordinate ids",
        user.name + " has no range of 65536 ids in " +
            (!uids && !gids ? "/etc/subuid and /etc/subgid"
             : !uids        ? "/etc/subuid"
                            : "/etc/subgid"),
        "sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + user.name));
  std::string slirp = find_program("slirp4netns");
  if (slirp.empty())
    out.push_back(failed("slirp4netns", "missing: rootless Podman's default network needs it",
                         "sudo apt install slirp4netns"));
  else
    out.push_back(ok("slirp4netns", slirp));
  std::string pasta = find_program("pasta");
  if (pasta.empty())
    out.push_back(
        warn("pasta", "missing (only --network=pasta needs it)", "sudo apt install passt"));
  else
    out.push_back(ok("pasta", pasta));
  return out;
}

std::vector<Verdict> check_podman(const User& user) {
  std::vector<Verdict> out;
  PodmanSettings settings = read_containers_conf(out);
  std::string setup = user.uid == 0 ? "vessel setup --user (as root: /root/.config/containers)"
                                    : "vessel setup --user";
  if (settings.registered_in.empty())
    out.push_back(
        warn("Podman", "vessel is not registered: podman needs --runtime=/path/to/vessel", setup));
  else
    out.push_back(ok("Podman", "vessel is registered in " + settings.registered_in));
  if (settings.default_runtime == "vessel")
    out.push_back(ok("default runtime", "vessel: plain `podman run` uses it"));
  else
    out.push_back(warn("default runtime",
                       settings.default_runtime + ": podman run needs --runtime=vessel",
                       "vessel setup --user --default"));
  if (user.uid != 0) out.push_back(check_tmp_dir(user, settings.tmp_dir));
  std::string legacy = user.home + "/.config/containers/libpod.conf";
  if (sys::exists(legacy))
    out.push_back(warn("libpod.conf", legacy + " is present, and Podman 4 ignores it",
                       "move its settings to " + user_containers_conf_path() + ", then remove it"));
  out.push_back(check_registries(user));
  return out;
}

}  // namespace vessel::runtime::checks

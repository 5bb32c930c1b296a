#include "runtime/state_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/sys.h"

namespace vessel::runtime {

using nlohmann::json;

std::string_view status_name(Status status) {
  switch (status) {
    case Status::Creating:
      return "creating";
    case Status::Created:
      return "created";
    case Status::Running:
      return "running";
    case Status::Paused:
      return "paused";
    case Status::Stopped:
      return "stopped";
  }
  return "stopped";
}

static Status parse_status(const std::string& name) {
  if (name == "created") return Status::Created;
  if (name == "running") return Status::Running;
  if (name == "paused") return Status::Paused;
  if (name == "creating") return Status::Creating;
  return Status::Stopped;
}

Status ContainerState::effective_status() const {
  if (status == Status::Creating) return status;
  if (!sys::process_alive(pid, pid_start_time)) return Status::Stopped;
  return status;
}

// True inside a user namespace that does not map the whole id range (Podman's rootless one).
static bool in_user_namespace() {
  auto map = sys::read_file("/proc/self/uid_map", 4096);
  if (!map) return false;
  unsigned long inside = 0, outside = 0, count = 0;
  return !(std::sscanf(map->c_str(), "%lu %lu %lu", &inside, &outside, &count) == 3 &&
           inside == 0 && outside == 0 && count == 4294967295UL);
}

std::string StateStore::default_root() {
  if (::geteuid() == 0 && !in_user_namespace()) return "/run/vessel";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg)
    return std::string(xdg) + "/vessel";
  return "/tmp/vessel-" + std::to_string(::getuid());
}

Result<void> StateStore::validate_id(const std::string& id) const {
  bool valid = !id.empty() && id.size() <= 1024 && id != "." && id != "..";
  for (char c : id)
    valid &=
        std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '+' || c == '.';
  if (!valid)
    return fail("container id \"" + id +
                "\" is not valid: use letters, digits, '_', '-', '+' and '.'");
  return {};
}

Result<void> StateStore::create_dir(const std::string& id) const {
  TRY(validate_id(id));
  TRY(sys::make_private_dir(m_root).map_error(context("state root")));
  if (::mkdir(dir(id).c_str(), 0700) < 0) {
    if (errno == EEXIST)
      return fail(EEXIST,
                  "container \"" + id +
                      "\" already exists: choose another id or delete it first (vessel delete " +
                      id + ")");
    return fail_errno("mkdir " + dir(id));
  }
  return {};
}

bool StateStore::exists(const std::string& id) const {
  return validate_id(id) && sys::exists(dir(id) + "/state.json");
}

Result<ContainerState> StateStore::load(const std::string& id) const {
  TRY(validate_id(id));
  if (!sys::exists(dir(id) + "/state.json"))
    return fail(ENOENT, "container \"" + id + "\" does not exist");
  std::string text = TRY(sys::read_file(dir(id) + "/state.json"));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(dir(id) + "/state.json is corrupt: delete the container");
  ContainerState state;
  state.id = id;
  state.bundle = j.value("bundle", "");
  state.pid = j.value("pid", 0);
  state.pid_start_time = j.value("pid_start_time", 0ULL);
  state.status = parse_status(j.value("status", "stopped"));
  state.created = j.value("created", "");
  if (j.contains("annotations") && j["annotations"].is_object())
    for (auto& [key, value] : j["annotations"].items())
      if (value.is_string()) state.annotations[key] = value;
  state.sandbox = j.value("sandbox", "");
  state.member = j.value("member", 0u);
  if (!state.sandbox.empty()) TRY(validate_id(state.sandbox));
  return state;
}

Result<void> StateStore::save(const ContainerState& state) const {
  json j = {{"id", state.id},
            {"bundle", state.bundle},
            {"pid", state.pid},
            {"pid_start_time", state.pid_start_time},
            {"status", status_name(state.status)},
            {"created", state.created},
            {"annotations", state.annotations}};
  if (!state.sandbox.empty()) j["sandbox"] = state.sandbox, j["member"] = state.member;
  return sys::write_file_atomic(dir(state.id) + "/state.json", j.dump(), 0600);
}

std::string ContainerState::shim_socket(const std::string& root) const {
  return root + "/" + (sandbox.empty() ? id : sandbox) + "/shim.sock";
}

Result<void> StateStore::remove(const std::string& id) const {
  TRY(validate_id(id));
  return sys::remove_tree(dir(id));
}

std::string now_rfc3339() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char buffer[64];
  size_t n = strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(buffer + n, sizeof buffer - n, ".%09ldZ", now.tv_nsec);
  return buffer;
}

}  // namespace vessel::runtime

// The parts of an OCI runtime spec (config.json) that vessel acts on, parsed and validated.
// load_bundle() reads BUNDLE/config.json and resolves root.path against the bundle; its errors
// are single sentences a user can act on.
#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace vessel::oci {

struct User {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::optional<mode_t> umask;
};

struct Rlimit {
  int resource;  // RLIMIT_*
  uint64_t soft;
  uint64_t hard;
};

// Capability sets as bit masks (bit N = capability N); unset sets mean "leave as they are".
struct Capabilities {
  std::optional<uint64_t> bounding, effective, inheritable, permitted, ambient;
};

struct Process {
  bool terminal = false;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  User user;
  Capabilities capabilities;
  bool no_new_privileges = false;
  std::vector<Rlimit> rlimits;
  std::optional<int> oom_score_adj;  // -1000 … 1000
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct Namespace {
  std::string type;  // one of kNamespaceTypes
  std::string path;  // empty: create a new one
};

// The namespace types of the runtime spec, each once at most in linux.namespaces.
inline constexpr const char* kNamespaceTypes[] = {"pid", "network", "mount",  "ipc",
                                                  "uts", "user",    "cgroup", "time"};

// One line of linux.uidMappings / gidMappings: container ids [container, container+size) are
// host ids [host, host+size).
struct IdMapping {
  uint32_t container = 0;
  uint32_t host = 0;
  uint32_t size = 0;
};

// The host id of a container id through `mappings` (none: the same id); nothing if unmapped.
std::optional<uint32_t> host_id(const std::vector<IdMapping>& mappings, uint32_t id);

// A device node linux.devices asks for in the container's /dev.
struct Device {
  std::string path;
  char type = 'c';  // c (or u), b, p
  uint32_t major = 0, minor = 0;
  std::optional<mode_t> file_mode;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

// linux.resources, as far as the guest enforces it (cgroup v2) and the VM is sized by it.
// A linux.resources.devices rule: later rules override earlier ones.
struct DeviceRule {
  bool allow = false;
  char type = 'a';     // 'a' (all), 'b' or 'c'
  int64_t major = -1;  // -1: any
  int64_t minor = -1;
  unsigned access = 7;  // 1 mknod, 2 read, 4 write (BPF_DEVCG_ACC_*)
};

struct Resources {
  std::optional<int64_t> memory_limit;  // bytes
  std::optional<int64_t> memory_swap;   // memory + swap, bytes; -1: unlimited
  std::optional<int64_t> cpu_quota;     // microseconds per period
  std::optional<uint64_t> cpu_period;
  std::optional<uint64_t> cpu_shares;  // cgroup v1's relative weight, 2 … 262144
  std::string cpuset_cpus;             // "0-1,3"
  std::string cpuset_mems;
  std::optional<int64_t> pids_limit;
  std::vector<DeviceRule> devices;
};

// An OCI hook, run by the runtime on the host (runtime/hooks.h).
struct Hook {
  std::string path;
  std::vector<std::string> args;
  // Exactly this environment; none given: the runtime's own, as runc's hooks get.
  std::optional<std::vector<std::string>> env;
  int timeout_seconds = 0;  // 0: none
};

// config.json's hooks by phase, as it names them ("prestart", "createRuntime", …).
struct Hooks {
  std::map<std::string, std::vector<Hook>> phases;
  const std::vector<Hook>& of(const std::string& phase) const;
};

struct Spec {
  std::string oci_version;
  Process process;
  std::string root_path;  // absolute once loaded from a bundle
  bool root_readonly = false;
  std::string hostname;
  std::string domainname;
  std::vector<Mount> mounts;
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<Device> devices;
  std::string rootfs_propagation;  // "", or shared, slave, private, unbindable (r- forms too)
  std::vector<std::pair<std::string, std::string>> sysctl;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  Resources resources;
  std::string cgroups_path;  // linux.cgroupsPath
  nlohmann::json seccomp;    // linux.seccomp as written (null: none), compiled by shim/seccomp.h
  Hooks hooks;
  std::map<std::string, std::string> annotations;  // those whose value is a string
  // config.json as read, for what takes it whole (the agent, a pod member's sandbox).
  nlohmann::json document;

  const Namespace* find_namespace(std::string_view type) const;
  // gidMappings, or the uidMappings when the spec gives none for groups.
  const std::vector<IdMapping>& effective_gid_mappings() const {
    return gid_mappings.empty() ? uid_mappings : gid_mappings;
  }
};

Result<Process> parse_process(const nlohmann::json& process);
// A LinuxResources object (linux.resources, or what `update --resources` reads).
Result<Resources> parse_resources(const nlohmann::json& resources);
// "CAP_CHOWN" → 0 …; nothing for a name this build does not know.
std::optional<int> capability_number(std::string_view name);
// Every capability name this build knows, in number order.
std::vector<std::string> capability_names();
Result<Spec> parse_spec(const nlohmann::json& config);
// config.json's hooks (common/oci_hooks.cc); errors name the field.
Result<Hooks> parse_hooks(const nlohmann::json& config);
// Parses config.json text; `where` names the file in error messages.
Result<Spec> parse_spec_text(const std::string& text, const std::string& where);
Result<Spec> load_bundle(const std::string& bundle);

}  // namespace vessel::oci

// Where containers' state lives and how it is read and written.
// Each container has <root>/<id>/ holding state.json (written atomically), the shim's files
// (shim.json, shim.sock, shim.log, console.log) and nothing else; delete removes it whole.
// root is --root if given, /run/vessel for real root, else $XDG_RUNTIME_DIR/vessel (Podman's
// rootless user namespace included: Podman passes no --root).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "common/result.h"

namespace vessel::runtime {

enum class Status { Creating, Created, Running, Paused, Stopped };
std::string_view status_name(Status status);

struct ContainerState {
  std::string id;
  std::string bundle;
  pid_t pid = 0;                          // the shim's
  unsigned long long pid_start_time = 0;  // tells the shim from a later process with its pid
  Status status = Status::Creating;       // as last recorded; see effective_status()
  std::string created;                    // RFC 3339, UTC
  std::map<std::string, std::string> annotations;
  // A pod member (runtime/pod.h): the sandbox whose VM it runs in, and its id in that VM's shim.
  // Its pid is then the member's relay, not a shim.
  std::string sandbox;
  uint32_t member = 0;

  // Where requests for this container go: its shim's socket, or its sandbox's.
  std::string shim_socket(const std::string& root) const;

  // Stopped once the shim is gone, whatever was recorded.
  Status effective_status() const;
};

class StateStore {
 public:
  explicit StateStore(std::string root) : m_root(std::move(root)) {}
  static std::string default_root();

  const std::string& root() const { return m_root; }
  std::string dir(const std::string& id) const { return m_root + "/" + id; }
  Result<void> validate_id(const std::string& id) const;
  // Creates the container's directory; fails with a clear message if the id is taken.
  Result<void> create_dir(const std::string& id) const;
  Result<ContainerState> load(const std::string& id) const;
  bool exists(const std::string& id) const;
  Result<void> save(const ContainerState& state) const;
  Result<void> remove(const std::string& id) const;

 private:
  std::string m_root;
};

std::string now_rfc3339();

}  // namespace vessel::runtime

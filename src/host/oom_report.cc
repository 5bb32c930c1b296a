#include "host/oom_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

#include "common/log.h"
#include "common/sys.h"
#include "common/unique_fd.h"
#include "host/process.h"

namespace vessel {

namespace {

// A protobuf length-delimited field: its key (field number, wire type 2), length and bytes.
std::string length_delimited(int field, const std::string& bytes) {
  std::string out(1, static_cast<char>(field << 3 | 2));
  for (size_t length = bytes.size();; length >>= 7) {
    out += static_cast<char>((length & 0x7f) | (length > 0x7f ? 0x80 : 0));
    if (length <= 0x7f) break;
  }
  return out + bytes;
}

struct Containerd {
  std::string address;     // its gRPC socket
  std::string name_space;  // the container's: k8s.io for the CRI
};

// containerd's runc v2 shim gives every runtime call its TTRPC_ADDRESS (containerd's socket
// with ".ttrpc" appended); the container's namespace names the directory above its bundle
// (STATE/io.containerd.runtime.v2.task/NAMESPACE/ID). Nothing when containerd did not run us.
std::optional<Containerd> containerd_of(const std::string& bundle_path, const std::string& id) {
  const char* ttrpc = std::getenv("TTRPC_ADDRESS");
  std::string_view address = ttrpc ? ttrpc : "";
  std::string_view path = bundle_path;
  while (path.ends_with('/')) path.remove_suffix(1);
  if (!address.ends_with(".ttrpc") || !path.ends_with("/" + id)) return std::nullopt;
  address.remove_suffix(std::string_view(".ttrpc").size());
  path.remove_suffix(id.size() + 1);
  std::string name_space(path.substr(path.rfind('/') + 1));
  path.remove_suffix(name_space.size());
  if (name_space.empty() || !path.ends_with("/io.containerd.runtime.v2.task/")) return std::nullopt;
  return Containerd{std::string(address), name_space};
}

// The containerd that runs this shim: the first on the PATH containerd gave it.
std::string containerd_binary() {
  auto dir = sys::first_on_path(
      [](const std::string& dir) { return ::access((dir + "/containerd").c_str(), X_OK) == 0; });
  return dir ? *dir + "/containerd" : "/usr/bin/containerd";
}

// `containerd publish`, as the runc shim publishes a host OOM: the event on its stdin.
Result<void> publish_to_containerd(const std::string& bundle_path, const std::string& id) {
  auto containerd = containerd_of(bundle_path, id);
  if (!containerd) return {};
  auto event = TRY(sys::pipe());
  // A few dozen bytes: the pipe holds them before containerd reads.
  TRY(sys::write_all(event.write.get(), task_oom_event(id)));
  event.write.reset();
  UniqueFd null = TRY(sys::open("/dev/null", O_WRONLY));
  std::string program = containerd_binary();
  auto child = TRY(
      ChildProcess::spawn({.argv = {program, "--address", containerd->address, "publish", "--topic",
                                    "/tasks/oom", "--namespace", containerd->name_space},
                           .fds = {{0, event.read.get()}, {1, null.get()}, {2, null.get()}}}));
  int code = exit_code_from_status(TRY(child.wait()));
  if (code != 0) return fail(program + " publish exited with " + std::to_string(code));
  return {};
}

}  // namespace

std::string task_oom_event(const std::string& container_id) {
  return length_delimited(1, "containerd.events.TaskOOM") +
         length_delimited(2, length_delimited(1, container_id));
}

void report_oom_kill(int bundle_dir, const std::string& bundle_path,
                     const std::string& container_id) {
  if (auto marked = sys::write_file_atomic_at(bundle_dir, "oom", "", 0644); !marked)
    log::warning("cannot record the OOM kill for Podman: " + marked.error().message);
  if (auto published = publish_to_containerd(bundle_path, container_id); !published)
    log::warning("cannot tell containerd of the OOM kill: " + published.error().message);
}

}  // namespace vessel

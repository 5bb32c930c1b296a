#include "agent/identity.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sys.h"

namespace vessel::agent {

bool wants_user_namespace(const oci::Spec& spec) {
  return spec.find_namespace("user") && !spec.uid_mappings.empty();
}

std::string map_text(const std::vector<oci::IdMapping>& mappings) {
  std::string text;
  for (const auto& mapping : mappings)
    text += std::to_string(mapping.container) + " " + std::to_string(mapping.host) + " " +
            std::to_string(mapping.size) + "\n";
  return text;
}

Result<UniqueFd> make_user_namespace(const oci::Spec& spec) {
  // A child holds the namespace while its maps are written and it is opened; it exits when the
  // pipe closes.
  auto hold = TRY(sys::pipe());
  pid_t holder = static_cast<pid_t>(
      ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (holder < 0) return fail_errno("creating the container's user namespace");
  if (holder == 0) {
    hold.write.reset();
    char byte;
    (void)::read(hold.read.get(), &byte, 1);
    ::_exit(0);
  }
  hold.read.reset();
  auto reap = [&] {
    hold.write.reset();
    ::waitpid(holder, nullptr, 0);
  };
  const std::string proc = "/proc/" + std::to_string(holder);
  auto write_map = [&](const char* file,
                       const std::vector<oci::IdMapping>& mappings) -> Result<void> {
    UniqueFd fd = TRY(sys::open(proc + "/" + file, O_WRONLY | O_CLOEXEC));
    // The kernel takes a map in one write.
    std::string text = map_text(mappings);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      return fail_errno(std::string("writing the container's ") + file);
    return {};
  };
  auto made = write_map("uid_map", spec.uid_mappings).and_then([&] {
    return write_map("gid_map", spec.effective_gid_mappings());
  });
  Result<UniqueFd> ns = made.and_then([&] { return sys::open(proc + "/ns/user", O_RDONLY); });
  reap();
  return ns;
}

}  // namespace vessel::agent

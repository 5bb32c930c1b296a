// What the two halves of `vessel check` (check.h) share: a verdict made by its status, and the
// user the checks are about. check.cc judges the host (kernel, KVM, QEMU, the guest image);
// check_podman.cc judges what rootless Podman needs and what Podman's configuration says.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/check.h"

namespace vessel::runtime::checks {

using Status = Verdict::Status;

inline Verdict ok(std::string name, std::string detail) {
  return {Status::Ok, std::move(name), std::move(detail), ""};
}
inline Verdict warn(std::string name, std::string detail, std::string fix) {
  return {Status::Warn, std::move(name), std::move(detail), std::move(fix)};
}
inline Verdict failed(std::string name, std::string detail, std::string fix) {
  return {Status::Fail, std::move(name), std::move(detail), std::move(fix)};
}

struct User {
  uid_t uid;
  std::string name;
  std::string home;
};

User current_user();

// The rootless prerequisites: newuidmap and newgidmap, subordinate ids, slirp4netns, pasta.
std::vector<Verdict> check_rootless(const User& user);
// Podman's configuration: vessel registered and the default, its tmp_dir, libpod.conf left over,
// registries.conf.
std::vector<Verdict> check_podman(const User& user);

}  // namespace vessel::runtime::checks

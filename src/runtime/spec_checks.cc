#include "runtime/spec_checks.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <set>

#include "common/sys.h"

namespace vessel::runtime {

Result<void> check_namespace_paths(const oci::Spec& spec) {
  static const std::pair<const char*, int> kTypes[] = {
      {"pid", CLONE_NEWPID},       {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
      {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},     {"user", CLONE_NEWUSER},
      {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
  for (const auto& ns : spec.namespaces) {
    if (ns.path.empty()) continue;
    auto fd = sys::open(ns.path, O_RDONLY | O_CLOEXEC);
    if (!fd)
      return fail(ENOENT, "linux.namespaces: the " + ns.type + " namespace " + ns.path +
                              " cannot be opened (" + fd.error().message + ")");
    int expected = 0;
    for (const auto& [name, flag] : kTypes)
      if (ns.type == name) expected = flag;
    int actual = ::ioctl(fd->get(), NS_GET_NSTYPE);
    if (actual != expected)
      return fail(EINVAL,
                  "linux.namespaces: " + ns.path + " is not a namespace of type " + ns.type);
    if (ns.type != "network")
      return fail(EINVAL, "linux.namespaces: a container in a VM cannot join the " + ns.type +
                              " namespace " + ns.path + ": it runs on its own kernel; give it a " +
                              ns.type + " namespace of its own, or run it with runc");
  }
  return {};
}

namespace {

// The namespace at `path` is this process's own network namespace: the host's, for the runtime.
bool is_own_network_namespace(const std::string& path) {
  struct stat given, own;
  return ::stat(path.c_str(), &given) == 0 && ::stat("/proc/self/ns/net", &own) == 0 &&
         given.st_dev == own.st_dev && given.st_ino == own.st_ino;
}

}  // namespace

Result<void> check_sysctls(const oci::Spec& spec) {
  static const std::set<std::string> kIpc = {
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (const auto& [key, value] : spec.sysctl) {
    auto refuse = [&](const std::string& why) {
      return fail(EINVAL, "linux.sysctl: \"" + key + "\" " + why);
    };
    if (kIpc.count(key) || key.starts_with("fs.mqueue.")) {
      if (!spec.find_namespace("ipc")) return refuse("is not allowed in the host's ipc namespace");
      continue;
    }
    if (key.starts_with("net.")) {
      const oci::Namespace* network = spec.find_namespace("network");
      if (!network || (!network->path.empty() && is_own_network_namespace(network->path)))
        return refuse("is not allowed in the host's network namespace");
      continue;
    }
    if (spec.find_namespace("uts")) {
      if (key == "kernel.domainname") continue;
      if (key == "kernel.hostname")
        return refuse("is not allowed as it conflicts with the spec's hostname field");
    }
    return refuse("is not in a separate kernel namespace");
  }
  return {};
}

}  // namespace vessel::runtime

#include "shim/template.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/base64.h"
#include "common/channel/agent_messages.h"
#include "common/channel/frame.h"
#include "common/channel/host_messages.h"
#include "common/log.h"
#include "common/scope_exit.h"
#include "common/sys.h"
#include "hypervisor/qemu/qemu.h"

namespace vessel::shim {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kMagic = "vessel-template ";
constexpr size_t kMaxHeader = 64 << 10;
constexpr auto kBuildBootTimeout = std::chrono::seconds(60);
// Free page reporting hands the host what the guest freed two seconds after it was freed.
constexpr auto kSettle = std::chrono::milliseconds(2500);

Result<std::string> identity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return fail_errno("stat " + path);
  return path + "@" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

// FNV-1a: names the file; the key in its first line is what is compared.
std::string hash_name(const std::string& key) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : key) hash = (hash ^ c) * 1099511628211ull;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::string header(const std::string& key) { return kMagic + json(key).dump() + "\n"; }

// The shape as the builder gets it, and back.
json shape_json(const hypervisor::VmConfig& shape) {
  return {{"hypervisor_path", shape.hypervisor_path},
          {"kernel", shape.kernel},
          {"initrd", shape.initrd},
          {"machine_type", shape.machine_type},
          {"kernel_params", shape.kernel_params},
          {"vcpus", shape.vcpus},
          {"memory_mib", shape.memory_mib},
          {"kvm", shape.accel == hypervisor::Accel::Kvm},
          {"tsc_khz", shape.tsc_khz},
          {"tcg_cache_mib", shape.tcg_cache_mib},
          {"rootfs_readonly", shape.shares.at(0).readonly}};
}

Result<hypervisor::VmConfig> shape_from_json(const json& in, const std::string& rootfs) {
  hypervisor::VmConfig vm;
  try {
    vm.hypervisor_path = in.at("hypervisor_path").get<std::string>();
    vm.kernel = in.at("kernel").get<std::string>();
    vm.initrd = in.at("initrd").get<std::string>();
    vm.machine_type = in.at("machine_type").get<std::string>();
    vm.kernel_params = in.at("kernel_params").get<std::string>();
    vm.vcpus = in.at("vcpus").get<unsigned>();
    vm.memory_mib = in.at("memory_mib").get<unsigned>();
    vm.accel = in.at("kvm").get<bool>() ? hypervisor::Accel::Kvm : hypervisor::Accel::Tcg;
    vm.tsc_khz = in.at("tsc_khz").get<uint64_t>();
    vm.tcg_cache_mib = in.at("tcg_cache_mib").get<unsigned>();
    vm.shares = {{"rootfs", rootfs, in.at("rootfs_readonly").get<bool>()}};
    vm.pod_shares = {{channel::kPodRootsTag, hypervisor::Ownership::Host},
                     {channel::kPodVolumesTag, hypervisor::Ownership::Guarded}};
  } catch (const json::exception& error) {
    return fail("a template request without its VM: " + std::string(error.what()));
  }
  vm.name = "vessel-template";
  vm.nics = {{-1, ""}};
  return vm;
}

// The builder's side of the agent channel: waits for one message while it drains the console.
class BuilderChannel {
 public:
  BuilderChannel(UniqueFd agent, UniqueFd console)
      : m_channel(std::move(agent)), m_console(std::move(console)) {}

  channel::Channel& channel() { return m_channel; }

  template <typename Message>
  Result<Message> wait_for(Clock::time_point deadline, hypervisor::Hypervisor& vm) {
    for (;;) {
      while (!m_frames.empty()) {
        channel::Frame frame = std::move(m_frames.front());
        m_frames.erase(m_frames.begin());
        if (frame.type != channel::FrameType::Control) continue;
        auto answer = channel::answer_of<Message>(TRY(channel::parse_agent_message(frame)));
        if (answer) return std::move(*answer).map_error(context("the template's agent"));
      }
      TRY(m_channel.flush());
      if (Clock::now() >= deadline) return fail(ETIMEDOUT, "the template's guest did not answer");
      if (auto status = vm.try_wait(); status && *status)
        return fail(EIO, "QEMU stopped while the template booted");
      pollfd fds[] = {{m_channel.fd(), POLLIN, 0}, {m_console.get(), POLLIN, 0}};
      if (::poll(fds, 2, 100) < 0 && errno != EINTR) return fail_errno("poll");
      if (fds[1].revents) {
        char discard[4096];
        if (::read(m_console.get(), discard, sizeof discard) <= 0) m_console.reset();
      }
      if (fds[0].revents && !TRY(m_channel.receive(m_frames)) && m_frames.empty())
        return fail(EIO, "the template's agent closed its channel");
    }
  }

  // Keeps reading the console while the guest settles.
  void idle_for(std::chrono::milliseconds duration) {
    auto until = Clock::now() + duration;
    while (Clock::now() < until) {
      pollfd fd{m_console.get(), POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (::poll(&fd, 1, static_cast<int>(left.count()) + 1) > 0) {
        char discard[4096];
        if (::read(m_console.get(), discard, sizeof discard) <= 0) m_console.reset();
      }
    }
  }

 private:
  channel::Channel m_channel;
  UniqueFd m_console;
  std::vector<channel::Frame> m_frames;
};

// A template whose key names a file (QEMU, the kernel, the initrd) that has changed since can
// never be used again: removed, since each holds tens of MiB of the state root's tmpfs. So are
// the oldest beyond kMaxTemplates, whatever they are.
constexpr size_t kMaxTemplates = 8;

bool is_stale(const std::string& path) {
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!file) return false;
  std::string start(kMaxHeader, '\0');
  ssize_t got = ::pread(file.get(), start.data(), start.size(), 0);
  size_t end = got > 0 ? start.find('\n') : std::string::npos;
  if (end == std::string::npos || !start.starts_with(kMagic)) return true;
  json key =
      json::parse(start.substr(std::strlen(kMagic), end - std::strlen(kMagic)), nullptr, false);
  if (!key.is_string()) return true;
  std::string text = key.get<std::string>();
  for (size_t at = 0; at < text.size();) {
    size_t next = text.find(' ', at);
    std::string token = text.substr(at, next == std::string::npos ? next : next - at);
    at = next == std::string::npos ? text.size() : next + 1;
    size_t sign = token.rfind('@');
    if (token.starts_with("/") && sign != std::string::npos) {
      auto now = identity(token.substr(0, sign));
      if (!now || *now != token) return true;
    }
  }
  return false;
}

Result<void> build(const json& request) {
  const std::string dir = request.value("dir", "");
  const std::string key = request.value("key", "");
  if (dir.empty() || key.empty()) return fail("a template request names no directory or key");
  TRY(sys::make_private_dir(dir));
  const std::string name = hash_name(key);
  UniqueFd lock = TRY(sys::open(dir + "/" + name + ".lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) return {};  // another builder makes it
    return fail_errno("locking the template");
  }
  if (open_template(dir, key)) return {};

  std::string empty = dir + "/empty.XXXXXX";
  if (!::mkdtemp(empty.data())) return fail_errno("mkdtemp in " + dir);
  ScopeExit remove_empty([&] { ::rmdir(empty.c_str()); });
  hypervisor::VmConfig vm = TRY(shape_from_json(request.value("vm", json::object()), empty));
  if (TRY(template_key(vm)) != key) return fail(ESTALE, "the template's shape changed meanwhile");

  auto [agent, agent_qemu] = TRY(sys::socketpair());
  auto [console, console_qemu] = TRY(sys::socketpair());
  UniqueFd null = TRY(sys::open("/dev/null", O_RDWR));
  vm.agent_fd = agent_qemu.get();
  vm.console_fd = console_qemu.get();
  vm.log_fd = null.get();
  vm.monitor = true;
  auto qemu = hypervisor::make_qemu();
  TRY(qemu->start(vm).map_error(context("booting the template")));
  agent_qemu.reset();
  console_qemu.reset();
  BuilderChannel guest(std::move(agent), std::move(console));
  auto hello =
      TRY(guest.wait_for<channel::from_agent::Hello>(Clock::now() + kBuildBootTimeout, *qemu));
  if (hello.version != channel::build_version())
    return fail(EPROTO, channel::version_mismatch_message(channel::build_version(), hello.version));
  channel::send(guest.channel(), channel::from_host::Template{});
  TRY(guest.wait_for<channel::from_agent::TemplateReady>(Clock::now() + std::chrono::seconds(30),
                                                         *qemu));
  TRY(qemu->scrub_free_memory());
  guest.idle_for(kSettle);

  // Written whole or not at all: an unnamed file, named once QEMU has finished with it.
  UniqueFd file(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!file) return fail_errno("creating a template in " + dir);
  TRY(sys::write_all(file.get(), header(key)));
  TRY(qemu->save(file.get()));
  if (::fsync(file.get()) < 0) return fail_errno("fsync");
  const std::string staged = dir + "/" + name + ".vm." + std::to_string(::getpid());
  if (::linkat(AT_FDCWD, ("/proc/self/fd/" + std::to_string(file.get())).c_str(), AT_FDCWD,
               staged.c_str(), AT_SYMLINK_FOLLOW) < 0)
    return fail_errno("naming " + staged);
  if (::rename(staged.c_str(), template_file(dir, key).c_str()) < 0) {
    ::unlink(staged.c_str());
    return fail_errno("renaming " + staged);
  }
  log::info("saved the template " + template_file(dir, key));
  remove_stale_templates(dir);
  return {};
}

}  // namespace

void remove_stale_templates(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> kept;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::string path = entry.path().string();
    if (entry.path().extension() == ".lock") {  // a builder's, done: no builder holds it now
      UniqueFd lock(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
      if (lock && ::flock(lock.get(), LOCK_EX | LOCK_NB) == 0) ::unlink(path.c_str());
      continue;
    }
    if (entry.path().filename().string().starts_with("empty.")) {  // a killed builder's
      struct stat st;
      if (::stat(path.c_str(), &st) == 0 && st.st_mtim.tv_sec < ::time(nullptr) - 600)
        ::rmdir(path.c_str());
      continue;
    }
    if (entry.path().extension() != ".vm" || !entry.is_regular_file(error)) continue;
    if (is_stale(path)) {
      log::info("removed the stale template " + path);
      ::unlink(path.c_str());
      continue;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) kept.push_back({st.st_mtim.tv_sec, path});
  }
  std::sort(kept.rbegin(), kept.rend());
  for (size_t i = kMaxTemplates; i < kept.size(); ++i) ::unlink(kept[i].second.c_str());
}

std::optional<hypervisor::VmConfig> template_shape(const hypervisor::VmConfig& vm) {
  if (vm.shares.size() != 1 || vm.nics.size() != 1 || vm.pod_shares.size() != 2 || vm.monitor)
    return std::nullopt;
  hypervisor::VmConfig shape;
  shape.name = "vessel-template";
  shape.hypervisor_path = vm.hypervisor_path;
  shape.kernel = vm.kernel;
  shape.initrd = vm.initrd;
  shape.machine_type = vm.machine_type;
  shape.kernel_params = vm.kernel_params;
  shape.vcpus = vm.vcpus;
  shape.memory_mib = vm.memory_mib;
  shape.accel = vm.accel;
  shape.tsc_khz = vm.tsc_khz;
  shape.tcg_cache_mib = vm.tcg_cache_mib;
  shape.shares = {{vm.shares[0].tag, "", vm.shares[0].readonly, vm.shares[0].ownership}};
  shape.pod_shares = vm.pod_shares;
  shape.nics = {{-1, ""}};
  return shape;
}

Result<std::string> template_key(const hypervisor::VmConfig& shape) {
  hypervisor::VmConfig plain = shape;
  for (auto& share : plain.shares) share.host_path.clear(), share.fd = -1;
  std::string key;
  for (const auto& arg : hypervisor::qemu_argv(plain)) key += arg + " ";
  for (const auto& path : {shape.hypervisor_path, shape.kernel, shape.initrd})
    key += TRY(identity(path)) + " ";
  key += "agent " + std::string(channel::build_version());
  return key;
}

std::string template_file(const std::string& dir, const std::string& key) {
  return dir + "/" + hash_name(key) + ".vm";
}

namespace {

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The template for `name` in `dir`, only if both are the user's own: the directory not a link,
// owned by the user, mode 0700; the file regular, with one link, owned by the user, mode 0600.
// Checked on the open descriptors, each opened without following a link. EPERM otherwise.
Result<UniqueFd> open_trusted(const std::string& dir, const std::string& name) {
  const uid_t user = ::geteuid();
  UniqueFd directory(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!directory && errno == ENOENT) return fail(ENOENT, dir + " does not exist");
  struct stat st;
  if (!directory || ::fstat(directory.get(), &st) < 0)
    return fail(EPERM, "the template directory " + dir + " is a link or no directory");
  if (st.st_uid != user || (st.st_mode & 07777) != 0700)
    return fail(EPERM, "the template directory " + dir + " has owner " + std::to_string(st.st_uid) +
                           " and mode " + octal_mode(st.st_mode) + ", not " + std::to_string(user) +
                           " and 0700");
  const std::string path = dir + "/" + name;
  UniqueFd file(::openat(directory.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!file && errno == ENOENT) return fail(ENOENT, path + " does not exist");
  if (!file && errno == ELOOP) return fail(EPERM, "the template " + path + " is a link");
  if (!file || ::fstat(file.get(), &st) < 0) return fail_errno("opening " + path);
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != user || (st.st_mode & 07777) != 0600)
    return fail(EPERM, "the template " + path + " is not a regular file of " +
                           std::to_string(user) + " with one link and mode 0600 (owner " +
                           std::to_string(st.st_uid) + ", " + std::to_string(st.st_nlink) +
                           " links, mode " + octal_mode(st.st_mode) + ")");
  return file;
}

}  // namespace

Result<UniqueFd> open_template(const std::string& dir, const std::string& key) {
  UniqueFd file = TRY(open_trusted(dir, hash_name(key) + ".vm"));
  const std::string expected = header(key);
  std::string start(std::min(expected.size(), kMaxHeader), '\0');
  ssize_t got = ::pread(file.get(), start.data(), start.size(), 0);
  if (got < 0) return fail_errno("reading " + template_file(dir, key));
  if (static_cast<size_t>(got) != expected.size() || start != expected)
    return fail(ESTALE, template_file(dir, key) + " was saved for another VM");
  if (::lseek(file.get(), static_cast<off_t>(expected.size()), SEEK_SET) < 0)
    return fail_errno("lseek");
  return file;
}

json template_build_request(const hypervisor::VmConfig& shape, const std::string& dir,
                            const std::string& key) {
  return {{"dir", dir}, {"key", key}, {"vm", shape_json(shape)}};
}

int build_template(const json& request) {
  if (auto built = build(request); !built) {
    log::error("cannot make the template: " + built.error().message);
    return 1;
  }
  return 0;
}

channel::from_host::Resume resume_message(const hypervisor::VmConfig& vm) {
  channel::from_host::Resume resume{std::string(64, '\0'), {}};
  if (::getrandom(resume.entropy.data(), resume.entropy.size(), 0) !=
      static_cast<ssize_t>(resume.entropy.size()))
    resume.entropy.clear();  // the agent refuses a resume without it
  for (const auto& nic : vm.nics) resume.macs.push_back(nic.mac);
  return resume;
}

channel::from_host::SetClock clock_message() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return {int64_t{now.tv_sec} * 1000000000 + now.tv_nsec};
}

}  // namespace vessel::shim

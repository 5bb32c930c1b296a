#include "common/sys.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace vessel::sys {

Result<UniqueFd> open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return fail_errno("open " + path);
  return UniqueFd(fd);
}

Result<std::string> read_to_end(int fd, size_t max_bytes) {
  std::string content;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read");
    if (n == 0) return content;
    if (content.size() + n > max_bytes)
      return fail(EFBIG, "more than " + std::to_string(max_bytes) + " bytes");
    content.append(buffer, n);
  }
}

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  UniqueFd fd = TRY(open(path, O_RDONLY));
  return read_to_end(fd.get(), max_bytes).map_error(context(path));
}

Result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("write");
    data.remove_prefix(n);
  }
  return {};
}

Result<void> write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
  size_t slash = path.rfind('/');
  std::string directory = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd dir = TRY(open(directory, O_PATH | O_DIRECTORY));
  return write_file_atomic_at(dir.get(), name, content, mode).map_error(context(directory));
}

Result<void> write_file_atomic_at(int dir, const std::string& name, std::string_view content,
                                  mode_t mode) {
  // A new file of our own, never one somebody planted (a symlink, a file kept open elsewhere).
  std::string temporary = name + ".tmp";
  ::unlinkat(dir, temporary.c_str(), 0);
  UniqueFd fd(
      ::openat(dir, temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return fail_errno("create " + temporary);
  auto written = write_all(fd.get(), content).map_error(context("writing " + temporary));
  if (written && ::fsync(fd.get()) < 0) written = fail_errno("fsync " + temporary);
  if (written && ::renameat(dir, temporary.c_str(), dir, name.c_str()) < 0)
    written = fail_errno("rename " + temporary);
  if (!written) ::unlinkat(dir, temporary.c_str(), 0);
  return written;
}

Result<void> make_private_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST) {
    if (errno != ENOENT) return fail_errno("mkdir " + path);
    TRY(mkdir_p(path.substr(0, path.rfind('/')), 0755));
    if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST) return fail_errno("mkdir " + path);
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) < 0)
    return fail(ENOTDIR, path +
                             " is not a directory (a symlink or a file is in its place): remove "
                             "it, or choose another --root");
  if (st.st_uid != ::geteuid())
    return fail(EPERM, path + " belongs to uid " + std::to_string(st.st_uid) +
                           ", not to you (uid " + std::to_string(::geteuid()) +
                           "): remove it, or choose another --root");
  // Ours: make it private if it is not (an older vessel made it 0711).
  if ((st.st_mode & 07777) != 0700 && ::fchmod(fd.get(), 0700) < 0)
    return fail_errno("chmod 0700 " + path);
  return {};
}

Result<void> set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return fail_errno("fcntl O_NONBLOCK");
  return {};
}

Result<void> mkdir_p(const std::string& path, mode_t mode) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return fail(error.value(), "mkdir " + path + ": " + error.message());
  ::chmod(path.c_str(), mode);
  return {};
}

unsigned long locked_mount_flags(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) < 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

Result<void> remove_tree(const std::string& path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) return fail(error.value(), "remove " + path + ": " + error.message());
  return {};
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<Pipe> pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return fail_errno("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Result<std::pair<UniqueFd, UniqueFd>> socketpair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    return fail_errno("socketpair");
  return std::pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

namespace {

// A socket's address. sun_path holds 107 bytes, and state directories can be deeper (Docker's
// /var/run/docker/runtime-runc/moby/<64-hex id>/): such a path is reached through a descriptor
// of its directory, /proc/self/fd/N/NAME, held open while the socket is bound or connected.
struct UnixAddress {
  sockaddr_un address{};
  UniqueFd directory;
};

Result<UnixAddress> unix_address(const std::string& path) {
  UnixAddress found;
  found.address.sun_family = AF_UNIX;
  std::string reachable = path;
  if (path.size() >= sizeof found.address.sun_path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return fail(ENAMETOOLONG, "socket name too long: " + path);
    found.directory = TRY(open(slash == 0 ? "/" : path.substr(0, slash), O_PATH | O_DIRECTORY));
    reachable = "/proc/self/fd/" + std::to_string(found.directory.get()) + path.substr(slash);
    if (reachable.size() >= sizeof found.address.sun_path)
      return fail(ENAMETOOLONG, "socket name too long: " + path);
  }
  std::memcpy(found.address.sun_path, reachable.c_str(), reachable.size() + 1);
  return found;
}

}  // namespace

Result<UniqueFd> unix_listen(const std::string& path) {
  UnixAddress found = TRY(unix_address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&found.address), sizeof found.address) < 0)
    return fail_errno("bind " + path);
  if (::listen(fd.get(), 16) < 0) return fail_errno("listen " + path);
  return fd;
}

Result<UniqueFd> unix_connect(const std::string& path) {
  UnixAddress found = TRY(unix_address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&found.address), sizeof found.address) < 0)
    return fail_errno("connect " + path);
  return fd;
}

Result<void> send_fd(int socket, int fd, std::string_view name) {
  return send_with_fds(socket, name, {fd});
}

std::optional<unsigned long long> process_start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat) return std::nullopt;
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  size_t end = stat->rfind(')');
  if (end == std::string::npos) return std::nullopt;
  const char* p = stat->c_str() + end + 1;
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p + 1, ' ');
    if (!p) return std::nullopt;
  }
  return std::strtoull(p + 1, nullptr, 10);
}

bool process_alive(pid_t pid, unsigned long long start_time) {
  if (pid <= 0) return false;
  auto now = process_start_time(pid);
  if (!now || *now != start_time) return false;
  // A zombie has exited already: it is not running, whatever its start time.
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  size_t end = stat ? stat->rfind(')') : std::string::npos;
  return end != std::string::npos && end + 2 < stat->size() && (*stat)[end + 2] != 'Z';
}

Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd entry{fd, POLLIN, 0};
  for (;;) {
    int n = ::poll(&entry, 1, static_cast<int>(timeout.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("poll");
    return n > 0;
  }
}

std::string executable_dir() {
  char buffer[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return ".";
  std::string path(buffer, n);
  return path.substr(0, path.rfind('/'));
}

std::optional<int64_t> positive_number(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || value <= 0 || value >= (1LL << 60)) return std::nullopt;
  return value;
}

std::optional<std::string> first_on_path(const std::function<bool(const std::string&)>& fits) {
  const char* path = std::getenv("PATH");
  std::string entries = path ? path : "/usr/local/bin:/usr/bin";
  for (size_t start = 0; start <= entries.size();) {
    size_t end = std::min(entries.find(':', start), entries.size());
    std::string dir = entries.substr(start, end - start);
    if (!dir.empty() && dir[0] == '/' && fits(dir)) return dir;
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace vessel::sys

namespace vessel::sys {

Result<UniqueFd> receive_fd(int socket) {
  char name[64];
  std::vector<UniqueFd> fds;
  if (receive_with_fds(socket, name, sizeof name, fds, 1) < 0) return fail_errno("recvmsg");
  if (fds.size() != 1) return fail(EPROTO, "no descriptor was received");
  return std::move(fds[0]);
}

}  // namespace vessel::sys

namespace vessel::sys {

ssize_t receive_with_fds(int socket, char* buffer, size_t size, std::vector<UniqueFd>& fds,
                         size_t max_fds) {
  iovec iov{buffer, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)] = {};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
      if (fds.size() < max_fds)
        fds.emplace_back(fd);
      else
        ::close(fd);
    }
  }
  return n;
}

Result<void> send_with_fds(int socket, std::string_view data, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  if (!fds.empty()) {
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  if (::sendmsg(socket, &message, MSG_NOSIGNAL) < 0) return fail_errno("sendmsg");
  return {};
}

}  // namespace vessel::sys

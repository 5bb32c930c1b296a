// Thin wrappers over the system calls vessel uses: each returns a Result whose error names the
// call and its path, and every descriptor is opened O_CLOEXEC.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vessel::sys {

Result<UniqueFd> open(const std::string& path, int flags, mode_t mode = 0);
// Reads a whole file; fails if it is larger than max_bytes (files from outside are bounded).
Result<std::string> read_file(const std::string& path, size_t max_bytes = 1 << 20);
// Reads until end of file; fails once more than max_bytes arrive (the writer may be untrusted).
Result<std::string> read_to_end(int fd, size_t max_bytes);
// Writes path.tmp, fsyncs and renames it over path, so readers see the old or the new content.
// The temporary is created O_EXCL|O_NOFOLLOW, so nothing planted in its place is written through.
Result<void> write_file_atomic(const std::string& path, std::string_view content,
                               mode_t mode = 0644);
Result<void> write_file_atomic_at(int dir, const std::string& name, std::string_view content,
                                  mode_t mode = 0644);
// Creates `path` 0700 if missing; then requires a real directory (not a symlink) owned by the
// effective uid, and makes it 0700. Otherwise fails with one sentence naming owner and fix.
Result<void> make_private_dir(const std::string& path);
Result<void> write_all(int fd, std::string_view data);
Result<void> set_nonblocking(int fd);
Result<void> mkdir_p(const std::string& path, mode_t mode = 0755);
// The flags of the mount `path` is on that a bind remount must repeat (nosuid, nodev, noexec and
// the atime ones): in a user namespace the kernel locks them, and a remount without them fails.
unsigned long locked_mount_flags(const std::string& path);
Result<void> remove_tree(const std::string& path);
bool exists(const std::string& path);

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
Result<Pipe> pipe();
Result<std::pair<UniqueFd, UniqueFd>> socketpair();

Result<UniqueFd> unix_listen(const std::string& path);
Result<UniqueFd> unix_connect(const std::string& path);
// Sends one descriptor with SCM_RIGHTS alongside a short name, as runc does for console sockets.
Result<void> send_fd(int socket, int fd, std::string_view name);
// Receives one descriptor sent with send_fd.
Result<UniqueFd> receive_fd(int socket);
// Sends bytes with descriptors attached (SCM_RIGHTS).
Result<void> send_with_fds(int socket, std::string_view data, const std::vector<int>& fds);
// Reads up to `size` bytes and any descriptors sent with them (at most max_fds; more are closed).
ssize_t receive_with_fds(int socket, char* buffer, size_t size, std::vector<UniqueFd>& fds,
                         size_t max_fds);

// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), so a
// stored pid can be told apart from a later process that reused the number.
std::optional<unsigned long long> process_start_time(pid_t pid);
bool process_alive(pid_t pid, unsigned long long start_time);

// Waits up to timeout for fd to become readable; false on timeout.
Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout);

// Directory of the running executable (/proc/self/exe resolved).
std::string executable_dir();
// A decimal number from 1 to 2^60 (larger ones stand for "unlimited" in cgroup files), the whole
// of `text`; nothing otherwise.
std::optional<int64_t> positive_number(const std::string& text);
// The first absolute directory on $PATH (/usr/local/bin:/usr/bin without one) that `fits`.
std::optional<std::string> first_on_path(const std::function<bool(const std::string&)>& fits);

}  // namespace vessel::sys

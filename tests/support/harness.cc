#include "support/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace vessel::test {

[[noreturn]] static void exec_child(const std::vector<std::string>& argv,
                                    const CommandOptions& options, int in, int out, int err) {
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  for (const auto& [key, value] : options.env) ::setenv(key.c_str(), value.c_str(), 1);
  if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) < 0) ::_exit(126);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  ::_exit(127);
}

static std::string read_all(int fd) {
  std::string text;
  char buffer[65536];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  ::close(fd);
  return text;
}

static CommandResult run_detached(const std::vector<std::string>& argv,
                                  const CommandOptions& options) {
  int out = ::memfd_create("out", MFD_CLOEXEC), err = ::memfd_create("err", MFD_CLOEXEC);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(argv, options, ::open("/dev/null", O_RDONLY), out, err);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = read_all(out);
  result.err = read_all(err);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

CommandResult run(const std::vector<std::string>& argv, const CommandOptions& options) {
  if (options.detach_output) return run_detached(argv, options);
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe");
  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(argv, options, in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::signal(SIGPIPE, SIG_IGN);
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  CommandResult result;
  size_t written = 0;
  int in_fd = in[1];
  if (options.input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int open_outputs = 2;
  auto deadline = start + std::chrono::seconds(options.timeout_seconds);
  while (open_outputs > 0) {
    std::vector<pollfd> fds;
    if (out[0] >= 0) fds.push_back({out[0], POLLIN, 0});
    if (err[0] >= 0) fds.push_back({err[0], POLLIN, 0});
    if (in_fd >= 0) fds.push_back({in_fd, POLLOUT, 0});
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
    ::poll(fds.data(), fds.size(), 1000);
    for (auto& entry : fds) {
      if (!entry.revents) continue;
      if (entry.fd == in_fd) {
        ssize_t n = ::write(in_fd, options.input.data() + written, options.input.size() - written);
        if (n > 0) written += n;
        if (n < 0 && errno != EAGAIN) written = options.input.size();
        if (written == options.input.size()) {
          ::close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buffer[65536];
      ssize_t n = ::read(entry.fd, buffer, sizeof buffer);
      if (n > 0) {
        (entry.fd == out[0] ? result.out : result.err).append(buffer, n);
      } else {
        ::close(entry.fd);
        (entry.fd == out[0] ? out[0] : err[0]) = -1;
        --open_outputs;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  if (out[0] >= 0) ::close(out[0]);
  if (err[0] >= 0) ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

CommandResult sh(const std::string& script, const CommandOptions& options) {
  return run({"/bin/sh", "-c", script}, options);
}

std::string build_dir() { return VESSEL_BUILD_DIR; }
std::string source_dir() { return VESSEL_SOURCE_DIR; }
std::string vessel() { return build_dir() + "/vessel"; }

std::string without_warnings(const std::string& text) {
  std::istringstream lines(text);
  std::string line, out;
  while (std::getline(lines, line))
    if (!line.starts_with("vessel: warning: ")) out += line + "\n";
  if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
  return out;
}

TempDir::TempDir() {
  char pattern[] = "/tmp/vessel-test.XXXXXX";
  if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp");
  m_path = pattern;
  ::chmod(m_path.c_str(), 0755);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(m_path, ignored);
}

void make_busybox_bundle(const std::string& dir, const std::vector<std::string>& args,
                         bool terminal) {
  namespace fs = std::filesystem;
  fs::create_directories(dir + "/rootfs/bin");
  for (const char* sub : {"proc", "sys", "dev", "tmp", "etc", "root"})
    fs::create_directories(dir + "/rootfs/" + sub);
  fs::copy_file("/bin/busybox", dir + "/rootfs/bin/busybox", fs::copy_options::overwrite_existing);
  auto list = run({"/bin/busybox", "--list"});
  std::istringstream names(list.out);
  std::string name;
  while (std::getline(names, name))
    if (!name.empty() && name != "busybox")
      fs::create_symlink("busybox", dir + "/rootfs/bin/" + name);
  nlohmann::json config = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", terminal},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env",
         {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "vessel-test"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}}}}}}};
  std::ofstream(dir + "/config.json") << config.dump(2);
}

void wait_for_template_builders() {
  for (int i = 0; i < 600; ++i) {
    if (processes_matching("--build-template").empty() &&
        processes_matching("-name vessel-template ").empty())
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

namespace {

// A file under /proc/PID of a process that may exit while it is read: the read then fails
// (ESRCH), which is an empty answer here, not an exception.
std::string read_proc_file(const std::string& path) {
  std::string text;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[4096];
  ssize_t got;
  while ((got = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, size_t(got));
  ::close(fd);
  return got < 0 ? std::string() : text;
}

}  // namespace

std::vector<std::string> processes_matching(const std::string& needle) {
  std::vector<std::string> found;
  DIR* proc = ::opendir("/proc");
  if (!proc) return found;
  while (dirent* entry = ::readdir(proc)) {
    if (!std::isdigit(static_cast<unsigned char>(entry->d_name[0]))) continue;
    if (std::atoi(entry->d_name) == ::getpid()) continue;
    std::string dir = std::string("/proc/") + entry->d_name;
    std::string text = read_proc_file(dir + "/cmdline");
    for (char& c : text)
      if (c == '\0') c = ' ';
    std::string stat_text = read_proc_file(dir + "/stat");
    bool zombie = stat_text.find(") Z ") != std::string::npos;
    if (!zombie && text.find(needle) != std::string::npos)
      found.push_back(std::string(entry->d_name) + ": " + text);
  }
  ::closedir(proc);
  return found;
}

std::string host_kernel_release() {
  utsname name{};
  ::uname(&name);
  return name.release;
}

Terminal::Terminal(const std::string& name, const std::string& command) : m_name(name) {
  sh("tmux kill-session -t " + m_name + " 2>/dev/null; tmux new-session -d -s " + m_name +
     " -x 120 -y 30 '" + command + "; echo exited-$?; sleep 60'");
}

Terminal::~Terminal() { sh("tmux kill-session -t " + m_name + " 2>/dev/null"); }

void Terminal::type(const std::string& text) {
  run({"tmux", "send-keys", "-t", m_name, "-l", text});
}

void Terminal::press(const std::string& key) { sh("tmux send-keys -t " + m_name + " " + key); }

void Terminal::resize(int columns, int rows) {
  sh("tmux resize-window -t " + m_name + " -x " + std::to_string(columns) + " -y " +
     std::to_string(rows));
}

std::string Terminal::screen() { return sh("tmux capture-pane -p -t " + m_name).out; }

bool Terminal::shows(const std::string& text, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (screen().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace vessel::test

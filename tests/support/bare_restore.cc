#include "support/bare_restore.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <vector>

namespace vessel::test {

size_t pss_kib(const std::string& pid) {
  std::ifstream rollup("/proc/" + pid + "/smaps_rollup");
  std::string line;
  while (std::getline(rollup, line))
    if (line.starts_with("Pss:")) return std::stoul(line.substr(4));
  return 0;
}

BareRestore::BareRestore(const std::string& qemu_pid, const std::string& template_file) {
  std::ifstream cmdline("/proc/" + qemu_pid + "/cmdline");
  std::vector<std::string> argv;
  for (std::string arg; std::getline(cmdline, arg, '\0');) argv.push_back(arg);
  int agent[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, agent) < 0) return;
  m_agent = agent[0];
  int saved = ::open(template_file.c_str(), O_RDONLY | O_CLOEXEC);
  // vessel's one-line header (the template's key) comes before QEMU's stream.
  for (char c = 0; saved >= 0 && c != '\n' && ::read(saved, &c, 1) == 1;) {
  }
  for (auto& arg : argv) {
    if (arg.starts_with("socket,id=console,")) arg = "file,id=console,path=/dev/null";
    if (arg.starts_with("socket,id=agent,")) arg = "socket,id=agent,fd=3";
    if (arg.starts_with("fd:")) arg = "fd:4";
    if (arg.starts_with("tap,id=net0,"))
      arg = "socket,id=net0,udp=127.0.0.1:9,localaddr=127.0.0.1:0";
    if (arg.starts_with("local,id=")) {
      size_t path = arg.find(",path=") + 6;
      arg.replace(path, arg.find(',', path) - path, m_empty.path());
    }
  }
  auto name = std::find(argv.begin(), argv.end(), "-name");
  if (name != argv.end() && name + 1 != argv.end()) name[1] = "bare-restore";
  m_pid = ::fork();
  if (m_pid == 0) {
    ::dup2(agent[1], 3);
    ::dup2(saved, 4);
    int null = ::open("/dev/null", O_RDWR);
    for (int fd : {0, 1, 2}) ::dup2(null, fd);
    ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);  // as vessel's jail does for QEMU
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(agent[1]);
  if (saved >= 0) ::close(saved);
}

BareRestore::~BareRestore() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
  if (m_agent >= 0) ::close(m_agent);
}

}  // namespace vessel::test

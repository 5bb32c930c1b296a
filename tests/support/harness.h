// Helpers for vessel's integration and end-to-end tests: run a command and capture its output,
// build a busybox bundle, and look for anything a container left behind.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace vessel::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  double seconds = 0;
};

struct CommandOptions {
  std::string input;                       // written to stdin, then closed
  std::map<std::string, std::string> env;  // added to the environment
  std::string cwd;
  int timeout_seconds = 300;
  // Capture stdout and stderr through files and return when the command exits, even if a
  // process it left behind (a shim after `create`) still holds them open.
  bool detach_output = false;
};

CommandResult run(const std::vector<std::string>& argv, const CommandOptions& options = {});
// /bin/sh -c script
CommandResult sh(const std::string& script, const CommandOptions& options = {});

std::string build_dir();
std::string source_dir();
std::string vessel();  // the vessel binary under test

// Removes `vessel: warning: ...` lines (the TCG fallback) from a stream before exact comparisons.
std::string without_warnings(const std::string& text);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

// Writes DIR/config.json (from `runc spec`, adjusted) and a busybox root filesystem DIR/rootfs.
void make_busybox_bundle(const std::string& dir, const std::vector<std::string>& args,
                         bool terminal = false);

// Processes whose command line contains `needle` (QEMU is named vessel-<id>), other than ours.
std::vector<std::string> processes_matching(const std::string& needle);
// Waits (at most a minute) until no VM template is being made in the background: a builder and
// its QEMU are not a container's, but they look like one to pgrep.
void wait_for_template_builders();
// For a configuration whose QEMU or guest is broken on purpose: no template can come of it, and
// a builder would wait for it in vain (docs/templates.md).
inline constexpr const char* kNoTemplates = "[factory]\nenable_template = false\n";

std::string host_kernel_release();

// A terminal as a person uses one: tmux runs `command` (then prints "exited-<status>"), keys are
// typed into it and the screen is read back.
class Terminal {
 public:
  Terminal(const std::string& name, const std::string& command);
  ~Terminal();
  void type(const std::string& text);  // literally
  void press(const std::string& key);  // a tmux key name: Enter, C-c …
  void resize(int columns, int rows);
  std::string screen();
  // Waits until `text` is on the screen.
  bool shows(const std::string& text, int seconds = 30);

 private:
  std::string m_name;
};

}  // namespace vessel::test

// What every command file gets: the global flags already parsed, its own arguments, and the
// state store. A command returns its exit code or an error, which main reports once.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/state_store.h"

namespace vessel::runtime {

struct Context {
  StateStore store;
  std::string log_path;  // --log: where Podman reads errors from
  std::string log_format = "text";
  // Under conmon, stderr of create is the container's stderr: warnings go there only when it is
  // a terminal, or for `run`, which a person started.
  bool warnings_on_stderr = false;
  bool keep_fd5 = false;  // see CreateRequest::keep_fd5

  void warn(const std::string& message) const;
  void report_error(const std::string& message) const;
};

using Arguments = std::vector<std::string>;

// Splits "--flag value", "--flag=value" and positional arguments; unknown flags are errors.
class ArgumentParser {
 public:
  ArgumentParser(std::string command, const Arguments& args)
      : m_command(std::move(command)), m_args(args) {}
  // Flags that take a value and flags that do not; names without dashes, aliases by '|':
  // "bundle|b".
  // With StopAt::FirstPositional, everything after the first positional argument is positional
  // too (`exec ID CMD -x`: the command's own flags).
  enum class StopAt { Never, FirstPositional };
  Result<void> parse(const std::vector<std::string>& valued,
                     const std::vector<std::string>& boolean, StopAt stop = StopAt::Never);
  std::string value(const std::string& name, const std::string& fallback = "") const;
  bool has(const std::string& name) const;
  // Every value of a flag that may be given more than once (--env A --env B), in order.
  std::vector<std::string> values(const std::string& name) const;
  const Arguments& positional() const { return m_positional; }
  // The single container id; fails with usage text otherwise.
  Result<std::string> id(size_t extra_allowed = 0) const;

 private:
  std::string m_command;
  Arguments m_args;
  std::vector<std::pair<std::string, std::string>> m_values;
  Arguments m_positional;
};

// --preserve-fds N with N > 0: host descriptors cannot cross into a VM; said in one sentence
// rather than silently dropped.
Result<void> refuse_preserved_fds(const ArgumentParser& parser);

Result<int> command_create(Context& context, const Arguments& args);
Result<int> command_start(Context& context, const Arguments& args);
Result<int> command_state(Context& context, const Arguments& args);
Result<int> command_kill(Context& context, const Arguments& args);
Result<int> command_delete(Context& context, const Arguments& args);
Result<int> command_run(Context& context, const Arguments& args);
Result<int> command_setup(Context& context, const Arguments& args);
Result<int> command_migrate_volume(Context& context, const Arguments& args);
Result<int> command_exec(Context& context, const Arguments& args);
Result<int> command_pause(Context& context, const Arguments& args);
Result<int> command_resume(Context& context, const Arguments& args);
Result<int> command_update(Context& context, const Arguments& args);
Result<int> command_features(Context& context, const Arguments& args);
Result<int> command_ps(Context& context, const Arguments& args);
Result<int> command_env(Context& context, const Arguments& args);
Result<int> command_check(Context& context, const Arguments& args);

}  // namespace vessel::runtime

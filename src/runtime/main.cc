// vessel: an OCI runtime that runs each container in its own VM. Global flags, then a command
// from the table below; errors are reported once, as one line on stderr and, with --log, as the
// single JSON object Podman reads from the log file.
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/channel/messages.h"
#include "common/sys.h"
#include "runtime/commands/command.h"
#include "runtime/container.h"

using namespace vessel;
using namespace vessel::runtime;

namespace {

struct Command {
  const char* name;
  Result<int> (*function)(Context&, const Arguments&);
  const char* usage;
};

constexpr Command kCommands[] = {
    {"create", command_create,
     "create [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] ID"},
    {"start", command_start, "start ID"},
    {"state", command_state, "state ID"},
    {"kill", command_kill, "kill ID [SIGNAL]"},
    {"pause", command_pause, "pause ID"},
    {"resume", command_resume, "resume ID"},
    {"update", command_update, "update --resources FILE|- ID"},
    {"ps", command_ps, "ps [--format table|json] ID   (the processes in the container's VM)"},
    {"features", command_features, "features   (the OCI features document)"},
    {"check", command_check,
     "check [--format text|json]   (can vessel run containers here? each problem with its fix)"},
    {"env", command_env, "env   (the effective configuration, and where each value came from)"},
    {"delete", command_delete, "delete [--force] ID"},
    {"run", command_run, "run [--bundle DIR] [--detach] ID"},
    {"exec", command_exec,
     "exec [--process FILE] [--detach] [--pid-file FILE] [--tty] [--console-socket SOCKET] "
     "[--env VAR=VALUE]... [--user UID[:GID]] [--additional-gids GID]... [--cwd DIR] "
     "[--cap CAP]... [--no-new-privs] ID [ARGS...]"},
    {"setup", command_setup,
     "setup --user [--default]   (register vessel in your Podman configuration; --default: "
     "make it your default runtime)\n  setup --containerd [--default] [--config FILE]   (as "
     "root: register vessel as containerd's CRI runtime handler)"},
    {"migrate-volume", command_migrate_volume,
     "migrate-volume DIR   (as root: give the files of a volume an older vessel wrote their own "
     "owners)"},
};

void print_version() {
  std::printf("vessel version %s\nspec: 1.0.2\n", std::string(channel::build_version()).c_str());
}

void print_usage() {
  std::printf(
      "usage: vessel [--root DIR] [--log FILE] [--log-format text|json] COMMAND "
      "...\n\ncommands:\n");
  for (const auto& command : kCommands) std::printf("  vessel %s\n", command.usage);
  std::printf(
      "  vessel --version\n\nvessel COMMAND --help shows one command; man vessel tells the "
      "rest.\n");
}

void append_log(const Context& context, const char* level, const std::string& message) {
  if (context.log_path.empty()) return;
  auto fd = sys::open(context.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!fd) return;
  std::string line;
  if (context.log_format == "json")
    line =
        nlohmann::json{{"level", level}, {"msg", message}, {"time", now_rfc3339()}}.dump() + "\n";
  else
    line = now_rfc3339() + " " + level + ": " + message + "\n";
  (void)sys::write_all(fd->get(), line);
}

}  // namespace

// Podman reads the --log file only when a command failed, as a single JSON object: an error
// is the only line a failing command writes there.
void Context::report_error(const std::string& message) const {
  std::fprintf(stderr, "vessel: %s\n", message.c_str());
  append_log(*this, "error", message);
}

void Context::warn(const std::string& message) const {
  if (warnings_on_stderr || ::isatty(2))
    std::fprintf(stderr, "vessel: warning: %s\n", message.c_str());
  append_log(*this, "warning", message);
}

namespace {

struct GlobalFlags {
  std::string root, log_path, log_format = "text";
  size_t command = 0;              // where the command's name is in the arguments
  std::optional<int> exit_status;  // set when a flag ends vessel (--version, --help, a bad one)
};

// Global flags come before the command (runc's and Podman's order).
GlobalFlags parse_global_flags(const Arguments& args) {
  GlobalFlags flags;
  size_t i = 0;
  for (; i < args.size() && args[i].starts_with("-"); ++i) {
    std::string flag = args[i], value;
    bool has_value = false;
    if (size_t eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    auto take = [&]() -> std::string {
      if (has_value) return value;
      return i + 1 < args.size() ? args[++i] : std::string();
    };
    if (flag == "--version" || flag == "-v") {
      print_version();
      flags.exit_status = 0;
      return flags;
    } else if (flag == "--help" || flag == "-h") {
      print_usage();
      flags.exit_status = 0;
      return flags;
    } else if (flag == "--root") {
      flags.root = take();
    } else if (flag == "--log") {
      flags.log_path = take();
    } else if (flag == "--log-format") {
      flags.log_format = take();
    } else if (flag == "--cgroup-manager" || flag == "--criu" || flag == "--rootless") {
      take();  // accepted for compatibility: vessel puts no host cgroups around the VM
    } else if (flag == "--systemd-cgroup" || flag == "--debug") {
    } else {
      Context{StateStore(""), flags.log_path, flags.log_format}.report_error(
          "unknown global flag " + flag + " (see vessel --help)");
      flags.exit_status = 1;
      return flags;
    }
  }
  flags.command = i;
  return flags;
}

int run_command(const Command& command, Context& context, const Arguments& rest) {
  // `vessel COMMAND --help` (before its id, as people type it; a flag after the id belongs to
  // exec's program).
  for (const auto& arg : rest) {
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: vessel [global flags] %s\nsee vessel --help and man vessel\n",
                  command.usage);
      return 0;
    }
    if (!arg.starts_with("-")) break;
  }
  auto result = command.function(context, rest);
  if (!result) {
    context.report_error(result.error().message);
    return 1;
  }
  return *result;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything here opens a descriptor that could land on fd 5.
  const bool keep_fd5 = inherited_fd5();
  // A hook that exits without reading its state, or a reader that goes away, is an EPIPE to
  // handle, not a signal that ends vessel halfway through create (and orphans the shim).
  ::signal(SIGPIPE, SIG_IGN);
  Arguments args(argv + 1, argv + argc);
  GlobalFlags flags = parse_global_flags(args);
  if (flags.exit_status) return *flags.exit_status;
  if (flags.command == args.size()) {
    print_usage();
    return 1;
  }
  std::string name = args[flags.command];
  if (name == "version") {
    print_version();
    return 0;
  }
  Context context{StateStore(flags.root.empty() ? StateStore::default_root() : flags.root),
                  flags.log_path, flags.log_format};
  context.keep_fd5 = keep_fd5;
  Arguments rest(args.begin() + flags.command + 1, args.end());
  for (const auto& command : kCommands)
    if (name == command.name) return run_command(command, context, rest);
  context.report_error("unknown command \"" + name + "\" (see vessel --help)");
  return 1;
}

#include "runtime/exec.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/sys.h"
#include "runtime/commands/command.h"

namespace vessel::runtime {

// `exec [--process FILE | ID ARGS...] [--detach] [--pid-file F] [--tty --console-socket S] ID`
Result<int> command_exec(Context& context, const Arguments& args) {
  ArgumentParser parser("exec", args);
  TRY(parser.parse({"process|p", "pid-file", "console-socket", "cwd", "preserve-fds"},
                   {"detach|d", "tty|t"}, ArgumentParser::StopAt::FirstPositional));
  TRY(refuse_preserved_fds(parser));
  if (parser.positional().empty())
    return fail("vessel exec: expects a container id (see vessel --help)");
  ExecRequest request;
  request.id = parser.positional()[0];
  request.console_socket = parser.value("console-socket");
  request.pid_file = parser.value("pid-file");
  request.detach = parser.has("detach");
  if (parser.has("process")) {
    request.process_json = TRY(sys::read_file(parser.value("process"), 1 << 20));
  } else {
    std::vector<std::string> command(parser.positional().begin() + 1, parser.positional().end());
    if (command.empty()) return fail("vessel exec: give --process FILE or a command after the id");
    request.process_json =
        nlohmann::json{
            {"args", command},
            {"cwd", parser.value("cwd", "/")},
            {"terminal", parser.has("tty")},
            {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}}
            .dump();
  }
  return exec_in_container(context.store, request);
}

}  // namespace vessel::runtime

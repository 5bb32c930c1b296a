#include "runtime/check.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "runtime/commands/command.h"

namespace vessel::runtime {

// `check [--format text|json]`: one line per check, ✔ / ! / ✘, and under each ! and ✘ the
// command that fixes it. Exit 0 only when vessel can run containers here (no ✘).
Result<int> command_check(Context& context, const Arguments& args) {
  ArgumentParser parser("check", args);
  TRY(parser.parse({"format|f"}, {}));
  std::string format = parser.value("format", "text");
  if (format != "text" && format != "json")
    return fail("check --format must be text or json, not \"" + format + "\"");
  CheckInputs inputs{TRY(load_config()), context.store.root()};
  std::vector<Verdict> verdicts = run_checks(inputs);
  size_t failures = 0, warnings = 0;
  for (const auto& verdict : verdicts) {
    failures += verdict.status == Verdict::Status::Fail;
    warnings += verdict.status == Verdict::Status::Warn;
  }
  if (format == "json") {
    nlohmann::json out = {{"ok", failures == 0}, {"checks", nlohmann::json::array()}};
    for (const auto& verdict : verdicts)
      out["checks"].push_back({{"check", verdict.name},
                               {"status", verdict.status == Verdict::Status::Ok     ? "ok"
                                          : verdict.status == Verdict::Status::Warn ? "warning"
                                                                                    : "fail"},
                               {"detail", verdict.detail},
                               {"fix", verdict.fix}});
    std::printf("%s\n", out.dump(2).c_str());
    return failures == 0 ? 0 : 1;
  }
  for (const auto& verdict : verdicts) {
    const char* mark = verdict.status == Verdict::Status::Ok     ? "✔"
                       : verdict.status == Verdict::Status::Warn ? "!"
                                                                 : "✘";
    std::printf("%s %s: %s\n", mark, verdict.name.c_str(), verdict.detail.c_str());
    if (!verdict.fix.empty()) std::printf("    fix: %s\n", verdict.fix.c_str());
  }
  if (failures == 0)
    std::printf(
        "vessel can run containers here%s\n",
        warnings ? (" (" + std::to_string(warnings) + " warning" + (warnings > 1 ? "s" : "") + ")")
                       .c_str()
                 : "");
  else
    std::printf("vessel cannot run containers here: %zu problem%s to fix\n", failures,
                failures > 1 ? "s" : "");
  return failures == 0 ? 0 : 1;
}

}  // namespace vessel::runtime

#include "shim/seccomp.h"

#include <seccomp.h>

#include <cctype>
#include <cstring>
#include <memory>

#include "common/sys.h"

namespace vessel::shim {

using nlohmann::json;

namespace {

Result<uint32_t> parse_action(const std::string& name, const json& rule) {
  uint32_t errno_value = rule.contains("errnoRet") && rule["errnoRet"].is_number_unsigned()
                             ? rule["errnoRet"].get<uint32_t>()
                             : EPERM;
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_value);
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(errno_value);
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return fail("seccomp: unsupported action " + name);
}

Result<scmp_compare> parse_operator(const std::string& name) {
  if (name == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (name == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (name == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (name == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (name == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (name == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (name == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return fail("seccomp: unsupported operator " + name);
}

// "SCMP_ARCH_X86_64" → libseccomp's token for "x86_64".
uint32_t parse_architecture(std::string name) {
  if (name.starts_with("SCMP_ARCH_")) name = name.substr(10);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return seccomp_arch_resolve_name(name.c_str());
}

struct ContextDeleter {
  void operator()(void* context) const { seccomp_release(context); }
};

}  // namespace

Result<std::string> compile_seccomp(const json& profile) {
  if (!profile.is_object()) return std::string();
  uint32_t default_action =
      TRY(parse_action(profile.value("defaultAction", "SCMP_ACT_ALLOW"), profile));
  std::unique_ptr<void, ContextDeleter> context(seccomp_init(default_action));
  if (!context) return fail("seccomp: cannot create a filter");
  // no_new_privileges is the spec's decision, not libseccomp's default.
  seccomp_attr_set(context.get(), SCMP_FLTATR_CTL_NNP, 0);
  for (const auto& architecture : profile.value("architectures", json::array())) {
    if (!architecture.is_string()) continue;
    uint32_t token = parse_architecture(architecture.get<std::string>());
    if (token != 0) seccomp_arch_add(context.get(), token);  // EEXIST for the native one is fine
  }
  for (const auto& rule : profile.value("syscalls", json::array())) {
    if (!rule.is_object()) continue;
    uint32_t action = TRY(parse_action(rule.value("action", ""), rule));
    if (action == default_action) continue;
    std::vector<scmp_arg_cmp> arguments;
    for (const auto& argument : rule.value("args", json::array())) {
      scmp_arg_cmp compare{};
      compare.arg = argument.value("index", 0u);
      compare.op = TRY(parse_operator(argument.value("op", "")));
      compare.datum_a = argument.value("value", uint64_t{0});
      compare.datum_b = argument.value("valueTwo", uint64_t{0});
      arguments.push_back(compare);
    }
    for (const auto& name : rule.value("names", json::array())) {
      if (!name.is_string()) continue;
      int number = seccomp_syscall_resolve_name(name.get<std::string>().c_str());
      if (number == __NR_SCMP_ERROR) continue;  // a syscall this architecture does not have
      int added =
          seccomp_rule_add_array(context.get(), action, number, arguments.size(), arguments.data());
      if (added < 0 && added != -EEXIST)
        return fail(-added,
                    "seccomp: rule for " + name.get<std::string>() + ": " + std::strerror(-added));
    }
  }
  auto program = TRY(sys::pipe());
  TRY(sys::set_nonblocking(program.write.get()));
  if (int exported = seccomp_export_bpf(context.get(), program.write.get()); exported < 0)
    return fail(-exported,
                std::string("seccomp: compiling the filter: ") + std::strerror(-exported));
  program.write.reset();
  return sys::read_to_end(program.read.get(), 1 << 20);
}

}  // namespace vessel::shim

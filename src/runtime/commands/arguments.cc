#include "runtime/commands/command.h"

namespace vessel::runtime {

static std::string canonical(const std::vector<std::string>& names, const std::string& given) {
  for (const auto& spec : names) {
    size_t start = 0;
    while (start <= spec.size()) {
      size_t end = spec.find('|', start);
      if (end == std::string::npos) end = spec.size();
      if (spec.compare(start, end - start, given) == 0) return spec.substr(0, spec.find('|'));
      start = end + 1;
    }
  }
  return "";
}

Result<void> ArgumentParser::parse(const std::vector<std::string>& valued,
                                   const std::vector<std::string>& boolean, StopAt stop) {
  for (size_t i = 0; i < m_args.size(); ++i) {
    const std::string& arg = m_args[i];
    if (stop == StopAt::FirstPositional && !m_positional.empty()) {
      m_positional.push_back(arg);
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      m_positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string inline_value;
    bool has_inline = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    if (std::string flag = canonical(valued, name); !flag.empty()) {
      if (!has_inline) {
        if (i + 1 >= m_args.size())
          return fail("vessel " + m_command + ": --" + name + " needs a value");
        inline_value = m_args[++i];
      }
      m_values.emplace_back(flag, inline_value);
    } else if (std::string flag = canonical(boolean, name); !flag.empty()) {
      m_values.emplace_back(flag, has_inline ? inline_value : "true");
    } else {
      return fail("vessel " + m_command + ": unknown flag " + arg + " (see vessel --help)");
    }
  }
  return {};
}

std::string ArgumentParser::value(const std::string& name, const std::string& fallback) const {
  for (auto it = m_values.rbegin(); it != m_values.rend(); ++it)
    if (it->first == name) return it->second;
  return fallback;
}

std::vector<std::string> ArgumentParser::values(const std::string& name) const {
  std::vector<std::string> found;
  for (const auto& [flag, value] : m_values)
    if (flag == name) found.push_back(value);
  return found;
}

bool ArgumentParser::has(const std::string& name) const {
  std::string v = value(name, "\x01");
  return v != "\x01" && v != "false";
}

Result<std::string> ArgumentParser::id(size_t extra_allowed) const {
  if (m_positional.empty() || m_positional.size() > 1 + extra_allowed)
    return fail("vessel " + m_command + ": expects a container id (see vessel --help)");
  return m_positional[0];
}

Result<void> refuse_preserved_fds(const ArgumentParser& parser) {
  std::string count = parser.value("preserve-fds", "0");
  if (count == "0") return {};
  return fail("--preserve-fds " + count +
              ": a container in a VM cannot be handed the host's open files; pass the data "
              "through a volume, a pipe on stdin, or the network instead");
}

}  // namespace vessel::runtime

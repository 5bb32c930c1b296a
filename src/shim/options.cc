#include "shim/options.h"

#include <nlohmann/json.hpp>

#include "common/sys.h"

namespace vessel::shim {

Result<ShimOptions> load_options(const std::string& path) {
  using nlohmann::json;
  std::string text = TRY(sys::read_file(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(path + " is not valid JSON");
  ShimOptions o;
  try {
    o.id = j.at("id");
    o.state_dir = j.at("state_dir");
    o.state_root = j.at("state_root");
    o.bundle = j.at("bundle");
    o.console_socket = j.value("console_socket", "");
    o.hypervisor_path = j.at("hypervisor_path");
    o.kernel = j.at("kernel");
    o.initrd = j.at("initrd");
    o.machine_type = j.at("machine_type");
    o.kernel_params = j.value("kernel_params", "");
    o.accel = j.value("accel", "auto");
    o.vcpus = j.value("vcpus", 1u);
    o.memory_mib = j.value("memory_mib", 256u);
    o.debug = j.value("debug", false);
    o.template_enabled = j.value("enable_template", false);
    o.template_path = j.value("template_path", "");
    if (o.template_path.empty()) o.template_enabled = false;
  } catch (const json::exception& error) {
    return fail(path + ": " + error.what());
  }
  return o;
}

}  // namespace vessel::shim

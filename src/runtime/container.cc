#include "runtime/container.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/oci_spec.h"
#include "common/scope_exit.h"
#include "common/sys.h"
#include "host/host_cgroup.h"
#include "runtime/hooks.h"
#include "runtime/late_network.h"
#include "runtime/pod.h"
#include "runtime/shim_client.h"
#include "runtime/shim_end.h"
#include "runtime/spec_checks.h"

namespace vessel::runtime {

using nlohmann::json;

namespace {

constexpr int kShimReadyFd = 3;
constexpr int kSlirpExitPipeFd = 5;

Result<void> check_guest_image(const Config& config) {
  for (const auto& [what, path] :
       {std::pair{"kernel", config.kernel}, std::pair{"initrd", config.initrd}}) {
    if (::access(path.c_str(), R_OK) == 0) continue;
    return fail(ENOENT, std::string("the guest ") + what + " " + path +
                            " is missing or unreadable: build the guest image (make guest) or set "
                            "[hypervisor.qemu] " +
                            what + " in " +
                            (config.source == "built-in defaults" ? "/etc/vessel/configuration.toml"
                                                                  : config.source));
  }
  if (::access(config.hypervisor_path.c_str(), X_OK) != 0)
    return fail(ENOENT, "QEMU " + config.hypervisor_path +
                            " is missing: install qemu-system-x86 or set [hypervisor.qemu] path");
  return {};
}

Result<json> read_shim_report(int fd) {
  std::string report = sys::read_to_end(fd, 65536).value_or("");
  json parsed = json::parse(report, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object())
    return fail(EIO, "the shim stopped before reporting");
  if (!parsed.value("ok", false)) return fail(EIO, parsed.value("error", "the shim failed"));
  return parsed;
}

}  // namespace

Result<oci::Spec> bundle_spec(const std::string& bundle) {
  std::string path = bundle + "/config.json";
  return oci::parse_spec_text(TRY(sys::read_file(path, 4 << 20)), path);
}

namespace {

// The shim found no template for its VM: one is made now, by a process of its own that outlives
// this one (conmon, as a subreaper, or init reaps it) and holds none of the container's stdio.
void start_template_builder(const json& request) {
  auto null = sys::open("/dev/null", O_RDWR);
  if (!null) return;
  SpawnOptions options;
  options.argv = {companion_dir() + "/vessel-shim", "--build-template", request.dump()};
  options.fds = {{0, null->get()}, {1, null->get()}, {2, null->get()}};
  if (auto builder = ChildProcess::spawn(options)) builder->release();
}

}  // namespace

bool inherited_fd5() {
  struct stat st;
  return ::fstat(kSlirpExitPipeFd, &st) == 0 && S_ISFIFO(st.st_mode);
}

Result<ChildProcess> create_container(const StateStore& store, const Config& config,
                                      const CreateRequest& request,
                                      const std::function<void(const std::string&)>& warn) {
  TRY(store.validate_id(request.id));
  // Like runc, keep the bundle as an absolute path: the shim and `state` must not depend on cwd.
  const std::string bundle = std::filesystem::absolute(request.bundle).lexically_normal().string();
  oci::Spec spec = TRY(oci::load_bundle(bundle));
  TRY(refuse_guest_hooks(spec));
  if (spec.process.terminal && request.console_socket.empty())
    return fail(
        "process.terminal is true but no --console-socket was given: pass one or set terminal to "
        "false");
  TRY(check_sysctls(spec));
  if (!spec.find_namespace("network"))
    return fail(
        "a container in a VM cannot share the host's network: drop --network=host (the default "
        "network, "
        "slirp4netns, pasta, a bridge or --network=none all work)");
  const std::map<std::string, std::string>& annotations = spec.annotations;
  // A pod member runs in its sandbox's VM (runtime/pod.h).
  if (auto sandbox = sandbox_of(annotations); sandbox && *sandbox != request.id)
    return create_member(store, request, bundle, spec, *sandbox);
  TRY(check_namespace_paths(spec));
  TRY(check_guest_image(config));
  const BaseSize size = TRY(base_size(config, annotations));
  TRY(store.create_dir(request.id));
  ScopeExit remove_dir([&] {
    (void)store.remove(request.id);
    host_cgroup::remove(spec.cgroups_path);  // the shim joined it, and is gone
  });
  const std::string dir = store.dir(request.id);

  json shim_options = {
      {"id", request.id},
      {"state_dir", dir},
      {"state_root", store.root()},
      {"bundle", bundle},
      {"console_socket", request.console_socket},
      {"hypervisor_path", config.hypervisor_path},
      {"kernel", config.kernel},
      {"initrd", config.initrd},
      {"machine_type", config.machine_type},
      {"kernel_params", config.kernel_params},
      {"accel", config.accel},
      {"vcpus", size.vcpus},
      {"memory_mib", size.memory_mib},
      {"debug", config.runtime_debug || config.hypervisor_debug || config.agent_debug},
      {"enable_template", config.enable_template},
      {"template_path",
       config.template_path.empty() ? store.root() + "/templates" : config.template_path}};
  TRY(sys::write_file_atomic(dir + "/shim.json", shim_options.dump(), 0600));

  ContainerState state;
  state.id = request.id;
  state.bundle = bundle;
  state.created = now_rfc3339();
  // The state carries the spec's annotations (runtime spec, "State"): `state` and every hook see
  // them.
  state.annotations = annotations;
  TRY(store.save(state));

  auto ready = TRY(sys::pipe());
  SpawnOptions options;
  options.argv = {companion_dir() + "/vessel-shim", dir};
  options.fds = {{0, 0}, {1, 1}, {2, 2}, {kShimReadyFd, ready.write.get()}};
  // With a terminal the container's stdio is the pty: the shim keeps none of ours, as runc's
  // container keeps none of runc's (containerd reads `create`'s output until every copy closes).
  UniqueFd null;
  if (spec.process.terminal) {
    null = TRY(sys::open("/dev/null", O_RDWR));
    options.fds = {
        {0, null.get()}, {1, null.get()}, {2, null.get()}, {kShimReadyFd, ready.write.get()}};
  }
  if (request.keep_fd5) options.fds.push_back({kSlirpExitPipeFd, kSlirpExitPipeFd});
  // Podman enters the mount namespace of the container's pid (podman cp, top): the shim's own,
  // which will hold only the container's files (shim/container_view.h).
  options.namespaces = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
  ChildProcess shim = TRY(ChildProcess::spawn(options).map_error(context("starting vessel-shim")));
  ready.write.reset();
  auto report = read_shim_report(ready.read.get());
  if (!report) return tl::unexpected(report.error());  // `shim` is killed and reaped on return
  if (auto warning = report->value("warning", ""); !warning.empty()) warn(warning);
  if (report->contains("template") && (*report)["template"].is_object())
    start_template_builder((*report)["template"]);

  TRY(record_created(store, state, shim.pid(), spec, request.pid_file));
  remove_dir.cancel();
  return shim;
}

Result<void> record_created(const StateStore& store, ContainerState& state, pid_t pid,
                            const oci::Spec& spec, const std::string& pid_file) {
  state.pid = pid;
  state.pid_start_time = sys::process_start_time(pid).value_or(0);
  state.status = Status::Created;
  TRY(store.save(state));
  // The runtime's environment is ready and the container created: the host-side hooks run now;
  // a failure ends the container (the caller kills its process and removes the state).
  std::string state_json = TRY(container_state_json(store, state.id));
  for (const char* phase : {"prestart", "createRuntime"})
    TRY(run_hooks(spec.hooks.of(phase), phase, state_json));
  // runc writes the pid without a newline; conmon reads it as a decimal number.
  if (!pid_file.empty()) TRY(sys::write_file_atomic(pid_file, std::to_string(pid), 0644));
  return {};
}

Result<void> start_container(const StateStore& store, const std::string& id,
                             const std::function<void(const std::string&)>& warn) {
  ContainerState state = TRY(store.load(id));
  Status status = state.effective_status();
  if (status != Status::Created)
    return fail("cannot start container \"" + id + "\": it is " + std::string(status_name(status)) +
                ", not created");
  control::request::Start request{TRY(plumb_late_network(store, state))};
  TRY(shim_request(store, state, request, std::chrono::seconds(60))
          .map_error(context("starting container \"" + id + "\"")));
  state.status = Status::Running;
  TRY(store.save(state));
  // A poststart hook that fails is a warning: the container runs (runtime spec).
  auto spec = bundle_spec(state.bundle);
  if (spec && !spec->hooks.of("poststart").empty())
    if (auto ran = run_hooks(spec->hooks.of("poststart"), "poststart",
                             TRY(container_state_json(store, id)));
        !ran)
      warn(ran.error().message);
  return {};
}

Result<void> kill_container(const StateStore& store, const std::string& id, int signal) {
  ContainerState state = TRY(store.load(id));
  Status status = state.effective_status();
  // runc's words: containerd's runc v2 shim takes "container not running" for a process that
  // has already exited (and deletes it), anything else for a failed kill.
  if (status == Status::Stopped || status == Status::Creating)
    return fail(ESRCH, "cannot signal \"" + id + "\": container not running");
  auto sent = shim_request(store, state, control::request::Kill{signal}, std::chrono::seconds(10));
  if (!sent && signal == SIGKILL) {
    ::kill(state.pid, SIGKILL);  // the shim's QEMU dies with it
    return {};
  }
  if (!sent) return tl::unexpected(sent.error());
  return {};
}

Result<void> pause_container(const StateStore& store, const std::string& id, bool pause) {
  ContainerState state = TRY(store.load(id));
  Status status = state.effective_status();
  Status from = pause ? Status::Running : Status::Paused;
  if (status != from)
    return fail("cannot " + std::string(pause ? "pause" : "resume") + " container \"" + id +
                "\": it is " + std::string(status_name(status)) + ", not " +
                std::string(status_name(from)));
  control::RequestOp request = pause ? control::RequestOp(control::request::Pause{})
                                     : control::RequestOp(control::request::Resume{});
  TRY(shim_request(store, state, request, std::chrono::seconds(10)));
  state.status = pause ? Status::Paused : Status::Running;
  return store.save(state);
}

Result<void> update_container(const StateStore& store, const std::string& id,
                              const std::string& resources_json) {
  ContainerState state = TRY(store.load(id));
  Status status = state.effective_status();
  if (status != Status::Running && status != Status::Created && status != Status::Paused)
    return fail("cannot update container \"" + id + "\": it is " +
                std::string(status_name(status)));
  json resources = json::parse(resources_json, nullptr, false);
  if (resources.is_discarded() || !resources.is_object())
    return fail("the resources to update are not a JSON object");
  oci::Resources limits = TRY(oci::parse_resources(resources));
  TRY(shim_request(store, state, control::request::Update{resources}, std::chrono::seconds(20))
          .map_error(context("updating container \"" + id + "\"")));
  // The VM's host cgroup follows the CPU limits (host_cgroup.h); the shim cannot reach it any
  // more from the container's view.
  auto spec = bundle_spec(state.bundle);
  if (spec)
    for (const auto& failed :
         host_cgroup::apply_cpu_limits(host_cgroup::directories(spec->cgroups_path), limits))
      return fail("updating container \"" + id + "\": cannot set the host cgroup's " + failed);
  return {};
}

Result<void> delete_container(const StateStore& store, const std::string& id, bool force,
                              const std::function<void(const std::string&)>& warn) {
  if (!store.exists(id)) {
    if (force) return {};
    TRY(store.validate_id(id));
    return fail(ENOENT, "container \"" + id + "\" does not exist");
  }
  ContainerState state = TRY(store.load(id));
  Status status = state.effective_status();
  if (status == Status::Running && !force)
    return fail("cannot delete container \"" + id +
                "\": it is running: stop it first or use --force");
  if (status != Status::Stopped) TRY(end_shim(store, state));
  // A pod member's files leave its sandbox's VM, which runs on for the others.
  if (!state.sandbox.empty()) remove_member_mounts(store, state);
  // poststop hooks see the container stopped; a failure is a warning (runtime spec).
  auto spec = bundle_spec(state.bundle);
  if (spec) host_cgroup::remove(spec->cgroups_path);
  std::vector<oci::Hook> hooks = spec ? spec->hooks.of("poststop") : std::vector<oci::Hook>{};
  std::string final_state = container_state_json(store, id).value_or("");
  TRY(store.remove(id));
  if (!hooks.empty())
    if (auto ran = run_hooks(hooks, "poststop", final_state); !ran) warn(ran.error().message);
  return {};
}

Result<std::string> container_state_json(const StateStore& store, const std::string& id) {
  ContainerState state = TRY(store.load(id));
  Status status = state.effective_status();
  json j = {{"ociVersion", "1.0.2"},
            {"id", id},
            {"status", status_name(status)},
            {"pid", status == Status::Stopped ? 0 : state.pid},
            {"bundle", state.bundle},
            {"created", state.created},
            {"owner", ""}};
  if (!state.annotations.empty()) j["annotations"] = state.annotations;
  return j.dump(2);
}

Result<int> parse_signal(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) {
    int number = std::stoi(text);
    if (number >= 1 && number < NSIG) return number;
  } else {
    std::string name = text.starts_with("SIG") ? text.substr(3) : text;
    for (int number = 1; number < NSIG; ++number) {
      const char* abbreviation = sigabbrev_np(number);
      if (abbreviation && name == abbreviation) return number;
    }
  }
  return fail("\"" + text + "\" is not a signal: give a number or a name such as TERM or SIGKILL");
}

}  // namespace vessel::runtime

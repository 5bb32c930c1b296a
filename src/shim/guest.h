// The sandbox's VM and the agent channel to it: started from its template or booted (under TCG
// when KVM turns out not to run it), its console and QEMU's messages drained, QEMU's setuid
// guard answered (hypervisor::Hypervisor::guard_fd), and waited on while the container is set up.
// Both the setup's waits and the sandbox's run loop poll through poll() here: frames from the
// agent are kept in order until taken.
#pragma once

#include <poll.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "common/channel/agent_messages.h"
#include "common/channel/host_messages.h"
#include "shim/boot.h"

namespace vessel::shim {

class Guest {
 public:
  using Clock = std::chrono::steady_clock;

  Guest(const ShimOptions& options, int state_dir) : m_options(options), m_state_dir(state_dir) {}
  ~Guest() { stop(); }

  // Restores the VM from its template when there is one that works (docs/templates.md), else
  // boots it; returns the agent's hello. `warning`: the TCG fallback, if it happened.
  Result<channel::from_agent::Hello> start(const oci::Spec& spec, const oci::Resources& sizing,
                                           const Network& network, const BindPlan& binds,
                                           std::string& warning);
  // How to make the template this VM could have been restored from, when it was not.
  const nlohmann::json& template_request() const { return m_template_request; }

  // During setup: the agent's next answer of type Message; its Failed, a timeout or the VM's
  // end fail.
  template <typename Message>
  Result<Message> wait_for(std::chrono::seconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;)
      if (auto answer = channel::answer_of<Message>(TRY(next_message(deadline, timeout))))
        return std::move(*answer);
  }

  channel::Channel& channel() { return *m_channel; }
  hypervisor::Hypervisor& vm() { return *m_vm; }
  GuestOutput& qemu_log() { return m_qemu_log; }
  void send(const channel::HostMessage& message) { channel::send(*m_channel, message); }

  // Polls `fds` with the guest's own descriptors for at most `timeout`, serves the guest's
  // (output, guard, and the channel's frames, read only when `read_channel`), and leaves in
  // `fds` the caller's with their revents. False when the agent closed the channel.
  Result<bool> poll(std::vector<pollfd>& fds, std::chrono::milliseconds timeout, bool read_channel);
  // The frames received and not yet taken, oldest first.
  std::vector<channel::Frame> take_frames() { return std::exchange(m_frames, {}); }

  // Asks the agent to power off, then stops QEMU.
  void stop();

 private:
  Result<channel::from_agent::Hello> boot_under_tcg(const oci::Spec& spec,
                                                    const oci::Resources& sizing,
                                                    const Network& network, const BindPlan& binds,
                                                    const Error& kvm_failure, std::string& warning);
  void adopt(BootedVm booted);
  Result<channel::AgentMessage> next_message(Clock::time_point deadline,
                                             std::chrono::seconds timeout);
  // The VM ended before the container was created: what the guest and QEMU said last.
  tl::unexpected<Error> stopped_error(std::optional<int> wait_status);
  std::string keep_console_log();

  const ShimOptions& m_options;
  int m_state_dir;
  std::unique_ptr<hypervisor::Hypervisor> m_vm;
  std::unique_ptr<channel::Channel> m_channel;
  GuestOutput m_console;
  GuestOutput m_qemu_log;
  std::vector<channel::Frame> m_frames;
  nlohmann::json m_template_request;
};

}  // namespace vessel::shim

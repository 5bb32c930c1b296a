#include "agent/template.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "agent/cgroup.h"
#include "agent/container.h"
#include "agent/network.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/sys.h"

namespace vessel::agent {

namespace {

constexpr size_t kMinEntropy = 32;
constexpr size_t kMaxEntropy = 512;

Result<void> seed_random(int random, const std::string& seed) {
  if (seed.size() < kMinEntropy || seed.size() > kMaxEntropy)
    return fail("resume: the entropy must be " + std::to_string(kMinEntropy) + " to " +
                std::to_string(kMaxEntropy) + " bytes");
  std::vector<char> buffer(sizeof(rand_pool_info) + seed.size());
  auto* info = reinterpret_cast<rand_pool_info*>(buffer.data());
  info->entropy_count = static_cast<int>(seed.size() * 8);
  info->buf_size = static_cast<int>(seed.size());
  std::memcpy(info->buf, seed.data(), seed.size());
  // SAFETY: RNDADDENTROPY reads a rand_pool_info followed by buf_size bytes, all in `buffer`.
  if (::ioctl(random, RNDADDENTROPY, info) < 0) return fail_errno("RNDADDENTROPY");
  // Credited entropy alone waits for the next scheduled reseed: every clone would draw the
  // template's CRNG output until then.
  if (::ioctl(random, RNDRESEEDCRNG) < 0) return fail_errno("RNDRESEEDCRNG");
  return {};
}

void write_knob(const char* path, const char* value) {
  if (auto knob = sys::open(path, O_WRONLY)) (void)sys::write_all(knob->get(), value);
}

}  // namespace

Result<TemplateState> prepare_for_template() {
  TemplateState state{TRY(sys::open("/dev/urandom", O_WRONLY)), network_cards()};
  // The first container's cgroup, empty and without limits, as every clone's create would make
  // it (its controllers' first use ~20 ms of a restored create).
  if (auto made = create_cgroup(Placement{}.cgroup, {}); !made)
    log::warning("no cgroup in the template: " + made.error().message);
  ::sync();
  write_knob("/proc/sys/vm/drop_caches", "3");
  write_knob("/proc/sys/vm/compact_memory", "1");
  return state;
}

Result<KnownCards> resume_from_template(const channel::from_host::Resume& message,
                                        const TemplateState& state) {
  TRY(seed_random(state.random.get(), message.entropy));
  return assign_macs(message.macs, state.cards);
}

Result<void> set_clock(const channel::from_host::SetClock& message) {
  int64_t now = message.realtime_ns;
  timespec time{static_cast<time_t>(now / 1000000000), static_cast<long>(now % 1000000000)};
  if (::clock_settime(CLOCK_REALTIME, &time) < 0) return fail_errno("setting the clock");
  return {};
}

}  // namespace vessel::agent

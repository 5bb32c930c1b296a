#include "common/log.h"

#include <unistd.h>

#include <ctime>
#include <string>

namespace vessel::log {

namespace {
std::string g_component = "vessel";
int g_fd = 2;
Level g_minimum = Level::Info;
}  // namespace

void init(std::string_view component, int fd, Level minimum) {
  g_component = component;
  g_fd = fd;
  g_minimum = minimum;
}

void write(Level level, std::string_view message) {
  if (level < g_minimum || g_fd < 0) return;
  static const char* names[] = {"debug", "info", "warning", "error"};
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  char stamp[32];
  snprintf(stamp, sizeof stamp, "%lld.%03ld", static_cast<long long>(now.tv_sec),
           now.tv_nsec / 1000000);
  std::string line =
      std::string(stamp) + " " + names[static_cast<int>(level)] + " " + g_component + ": ";
  line.append(message);
  line.push_back('\n');
  (void)!::write(g_fd, line.data(), line.size());
}

}  // namespace vessel::log

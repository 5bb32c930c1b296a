#include "common/log.h"

#include <unistd.h>

#include <ctime>
#include <string>

#include "common/capped_file.h"

namespace vessel::log {

namespace {
std::string g_component = "vessel";
int g_fd = 2;
Level g_minimum = Level::Info;
CappedFile g_file;
}  // namespace

void init(std::string_view component, int fd, Level minimum) {
  g_component = component;
  g_fd = fd;
  g_minimum = minimum;
}

void init_capped(std::string_view component, CappedFile file, Level minimum) {
  g_file = std::move(file);
  init(component, -1, minimum);
}

void write(Level level, std::string_view message) {
  if (level < g_minimum || (g_fd < 0 && !g_file.valid())) return;
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
  if (g_file.valid())
    g_file.write(line);
  else
    (void)!::write(g_fd, line.data(), line.size());
}

}  // namespace vessel::log

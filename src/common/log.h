// A minimal logger: lines "time level component: message" to one descriptor (stderr by default).
// The shim logs to a file in its state directory, since its stderr is the container's.
#pragma once

#include <string_view>

namespace vessel {
class CappedFile;
}

namespace vessel::log {

enum class Level { Debug, Info, Warning, Error };

void init(std::string_view component, int fd, Level minimum);
// Logs to a file that never grows past its cap (the shim's log, which the guest can make long).
void init_capped(std::string_view component, CappedFile file, Level minimum);
void write(Level level, std::string_view message);
inline void debug(std::string_view message) { write(Level::Debug, message); }
inline void info(std::string_view message) { write(Level::Info, message); }
inline void warning(std::string_view message) { write(Level::Warning, message); }
inline void error(std::string_view message) { write(Level::Error, message); }

}  // namespace vessel::log

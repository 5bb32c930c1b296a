// Result<T>: a value or an Error (errno-like code plus a message that reads "outer: inner").
// Propagate with TRY(expr); add context on the way up with .map_error(context("...")).
// The alias lives here alone so that moving to std::expected is a one-line change.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace vessel {

struct Error {
  int code = 0;  // an errno value where one applies, else EINVAL/EIO
  std::string message;
};

template <typename T = void>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(int code, std::string message) {
  return tl::unexpected(Error{code, std::move(message)});
}

inline tl::unexpected<Error> fail(std::string message) { return fail(EINVAL, std::move(message)); }

// "<what>: <strerror(errno)>", for a syscall that just failed.
inline tl::unexpected<Error> fail_errno(const std::string& what) {
  int saved = errno;
  return fail(saved, what + ": " + std::strerror(saved));
}

// Prefixes an error with where it happened: map_error(context("starting VM")).
inline auto context(std::string outer) {
  return [outer = std::move(outer)](Error error) {
    error.message = outer + ": " + error.message;
    return error;
  };
}

namespace detail {
template <typename T>
T take_value(tl::expected<T, Error>&& result) {
  return std::move(result).value();
}
inline void take_value(tl::expected<void, Error>&&) {}
}  // namespace detail

}  // namespace vessel

#define VESSEL_CONCAT_INNER(a, b) a##b
#define VESSEL_CONCAT(a, b) VESSEL_CONCAT_INNER(a, b)

// Evaluates a Result expression; returns its error from the enclosing function, or yields its
// value.
#define TRY(expr)                                                                  \
  ({                                                                               \
    auto VESSEL_CONCAT(_result_, __LINE__) = (expr);                               \
    if (!VESSEL_CONCAT(_result_, __LINE__))                                        \
      return tl::unexpected(std::move(VESSEL_CONCAT(_result_, __LINE__)).error()); \
    ::vessel::detail::take_value(std::move(VESSEL_CONCAT(_result_, __LINE__)));    \
  })

// ScopeExit runs a function when it goes out of scope, unless cancel() was called:
// the way a multi-step setup undoes its finished steps when a later one fails.
#pragma once

#include <utility>

namespace vessel {

template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F function) : m_function(std::move(function)) {}
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  ~ScopeExit() {
    if (m_active) m_function();
  }
  void cancel() { m_active = false; }

 private:
  F m_function;
  bool m_active = true;
};

}  // namespace vessel

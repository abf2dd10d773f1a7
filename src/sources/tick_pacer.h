// Wall-clock pacing of a source's ticks, for sources that run in real time.

#ifndef CONVERGE_SOURCES_TICK_PACER_H_
#define CONVERGE_SOURCES_TICK_PACER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>

#include "absl/time/time.h"

namespace converge {

// Tick k is due `interval` * k after the first call to WaitUntilDue(), so
// the time before the first tick does not count against the schedule, and a
// late tick does not shift the ticks after it.
//
// Thread safety: WaitUntilDue() is for one thread (the scheduler). A stop
// request from any thread wakes it at once.
class TickPacer {
 public:
  explicit TickPacer(absl::Duration interval) : interval_(interval) {}

  TickPacer(const TickPacer&) = delete;
  TickPacer& operator=(const TickPacer&) = delete;

  // Blocks until tick `tick` is due on the steady clock. Returns false when
  // `stop` was requested first.
  bool WaitUntilDue(uint64_t tick, std::stop_token stop);

 private:
  const absl::Duration interval_;
  std::optional<std::chrono::steady_clock::time_point> start_;

  std::mutex mutex_;                   // only for wake_
  std::condition_variable_any wake_;  // only stop requests notify it
};

}  // namespace converge

#endif  // CONVERGE_SOURCES_TICK_PACER_H_

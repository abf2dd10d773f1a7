// Rate limiting for repeated log lines, so that an error hitting every fetch
// or every batch does not flood the log.
//
// Thread safety: Allow() may be called from any thread.

#ifndef CONVERGE_CORE_LOG_RATE_LIMITER_H_
#define CONVERGE_CORE_LOG_RATE_LIMITER_H_

#include <cstdint>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace converge {

class LogRateLimiter {
 public:
  // Allows at most `burst` lines in each `period`.
  LogRateLimiter(int burst, absl::Duration period)
      : burst_(burst), period_(period) {}

  // Returns true when a line may be logged now. On true, `*suppressed`
  // receives the number of lines refused since the previous allowed one, for
  // the caller to mention in its line.
  bool Allow(uint64_t* suppressed) {
    std::lock_guard<std::mutex> lock(mutex_);
    const absl::Time now = absl::Now();
    if (now - period_start_ >= period_) {
      period_start_ = now;
      allowed_in_period_ = 0;
    }
    if (allowed_in_period_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++allowed_in_period_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  const int burst_;
  const absl::Duration period_;

  std::mutex mutex_;
  absl::Time period_start_ = absl::InfinitePast();  // guarded by mutex_
  int allowed_in_period_ = 0;                       // guarded by mutex_
  uint64_t suppressed_ = 0;                         // guarded by mutex_
};

}  // namespace converge

#endif  // CONVERGE_CORE_LOG_RATE_LIMITER_H_

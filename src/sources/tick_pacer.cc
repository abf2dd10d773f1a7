#include "sources/tick_pacer.h"

namespace converge {

bool TickPacer::WaitUntilDue(uint64_t tick, std::stop_token stop) {
  const auto now = std::chrono::steady_clock::now();
  if (!start_) start_ = now;
  const auto due = *start_ + absl::ToChronoNanoseconds(
                                 interval_ * static_cast<int64_t>(tick));

  // Nothing notifies wake_: the wait ends at `due`, or early when the
  // stop_token's callback wakes it.
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_until(lock, stop, due, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace converge

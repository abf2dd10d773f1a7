// How far each shard has got through the ticks, so that the scheduler keeps
// a bounded number of ticks in flight.
//
// Thread safety: MarkCompleted() is called by shard threads, WaitForAll() by
// the scheduler; both take the internal mutex.

#ifndef CONVERGE_PIPELINE_TICK_PROGRESS_H_
#define CONVERGE_PIPELINE_TICK_PROGRESS_H_

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <vector>

namespace converge {

class TickProgress {
 public:
  explicit TickProgress(int shards) : completed_(shards, 0) {}

  // Records that `shard` has completed every tick before `ticks_completed`.
  void MarkCompleted(int shard, uint64_t ticks_completed) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      completed_[shard] = ticks_completed;
    }
    changed_.notify_all();
  }

  // Waits until every shard has completed the first `ticks` ticks, or `stop`
  // is requested. Returns true in the first case.
  bool WaitForAll(uint64_t ticks, std::stop_token stop) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait(lock, stop, [&] { return MinCompleted() >= ticks; });
  }

 private:
  uint64_t MinCompleted() const {
    return *std::min_element(completed_.begin(), completed_.end());
  }

  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::vector<uint64_t> completed_;  // guarded by mutex_, one per shard
};

}  // namespace converge

#endif  // CONVERGE_PIPELINE_TICK_PROGRESS_H_

// Live and backfill lane planning for sources that can be queried by time
// range (sim and Cloudflare).
//
// Every tick the live lane fetches [now - lookback, now] for every partition
// (zone group), first and uncapped. The backfill lane covers
// [start - max_backfill, start - lookback) in chunks of `backfill_chunk`,
// oldest first, at most `backfill_calls_per_tick` calls per tick. A failed
// backfill call is retried on a later tick; a chunk only counts as done once
// every partition of it succeeded.
//
// Thread safety: not thread-safe; owned by the scheduler thread.

#ifndef CONVERGE_LANES_H_
#define CONVERGE_LANES_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "converge/source.h"

namespace converge {

struct LaneOptions {
  absl::Duration poll_interval = absl::Seconds(30);  // time between ticks
  absl::Duration lookback = absl::Minutes(10);       // live lane width
  absl::Duration max_backfill = absl::Hours(2);      // 0 disables backfill
  absl::Duration backfill_chunk = absl::Minutes(10);
  int backfill_calls_per_tick = 1;  // >= 0; 0 pauses the backfill lane
};

// Returns OK, or kInvalidArgument naming the field, the value and the rule.
absl::Status ValidateLaneOptions(const LaneOptions& options);

class LanePlanner {
 public:
  // `start` is the process start time; `partitions` the number of zone
  // groups each range is fetched for (>= 1).
  // REQUIRES: ValidateLaneOptions(options).ok(), partitions >= 1.
  LanePlanner(const LaneOptions& options, absl::Time start,
              uint32_t partitions);

  // Plans the tasks of tick `tick` at `now`: the live lane for every partition,
  // then up to backfill_calls_per_tick pending backfill calls, oldest first.
  // Backfill calls handed out and not yet reported are not planned again.
  TickPlan Plan(uint64_t tick, absl::Time now);

  // Records how a task from Plan() ended. A failed backfill call goes back to
  // the front of the pending list.
  void OnTaskDone(const FetchTask& task, bool ok);

  uint64_t backfill_chunks_total() const { return chunks_total_; }
  uint64_t backfill_chunks_done() const { return chunks_done_; }

 private:
  struct BackfillCall {
    uint64_t chunk = 0;  // 0 is the oldest chunk
    uint32_t partition = 0;
  };

  TimeRange ChunkRange(uint64_t chunk) const;

  const LaneOptions options_;
  const absl::Time start_;
  const uint32_t partitions_;
  absl::Time backfill_begin_;
  absl::Time backfill_end_;
  uint64_t chunks_total_ = 0;
  uint64_t chunks_done_ = 0;
  std::deque<BackfillCall> pending_;                    // oldest first
  absl::flat_hash_map<uint64_t, uint32_t> remaining_;   // chunk -> calls left
};

}  // namespace converge

#endif  // CONVERGE_LANES_H_

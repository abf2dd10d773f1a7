// Live and backfill lane planning for sources that can be queried by time
// range (sim and Cloudflare).
//
// Every tick the live lane fetches [now - lookback, now] for every partition
// (zone group), first and uncapped. The backfill lane covers
// [start - max_backfill, start - lookback) in chunks of `backfill_chunk`,
// oldest first, at most `backfill_calls_per_tick` calls per tick. A failed
// backfill call is retried on a later tick; a chunk only counts as done once
// every partition of it succeeded. Chunks are laid from the oldest end, so
// the newest chunk is the one that may be shorter.
//
// Gaps: when a partition's live fetches failed, or no tick ran (the sink was
// down and pressure stopped the scheduler, or the process was suspended), for
// longer than the lookback, the minutes that fell out of the live range are
// planned on a gap lane. It shares the backfill budget per tick and goes
// first, because those minutes are the holes users see on recent dashboards.
//
// Thread safety: not thread-safe; owned by the scheduler thread.

#ifndef CONVERGE_LANES_H_
#define CONVERGE_LANES_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
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

// Upper bound on max_backfill / backfill_chunk, so that a typo such as a
// one-second chunk over a year of backfill is rejected instead of planned.
inline constexpr int64_t kMaxBackfillChunks = 1000000;

// Returns OK, or kInvalidArgument naming the field, the value and the rule.
// Every duration must be finite. poll_interval, lookback and backfill_chunk
// must be > 0, and max_backfill >= 0. poll_interval must not exceed lookback,
// or the live lane would skip the buckets between two ticks' ranges. The
// backfill may span at most kMaxBackfillChunks chunks.
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

  // Records how a task from Plan() ended. A failed backfill call goes back
  // ahead of every call not yet planned, so retries keep the lane oldest
  // first. Live tasks and tasks this planner did not hand out, or already
  // heard about, are ignored.
  void OnTaskDone(const FetchTask& task, bool ok);

  uint64_t backfill_chunks_total() const { return chunks_total_; }
  uint64_t backfill_chunks_done() const { return chunks_done_; }

  // Total time range planned on the gap lane so far, over all partitions.
  absl::Duration gap_scheduled() const { return gap_scheduled_; }

  // Gap calls planned but not handed out yet.
  size_t gap_calls_pending() const { return gaps_.size(); }

 private:
  // One backfill fetch: one chunk for one partition.
  struct BackfillCall {
    uint64_t chunk = 0;  // 0 is the oldest chunk
    uint32_t partition = 0;
  };

  TimeRange ChunkRange(uint64_t chunk) const;
  uint64_t CallId(const BackfillCall& call) const;

  // Takes the oldest pending call: a retry first, then the next call never
  // handed out. Returns false when nothing is pending.
  bool TakeNextCall(BackfillCall* call);

  // Puts a failed call back among the retries, which stay oldest first.
  void Requeue(const BackfillCall& call);

  // One gap fetch: a range of at most backfill_chunk for one partition.
  struct GapCall {
    uint32_t partition = 0;
    TimeRange range;
  };

  // Plans [covered_until, live_start) of each partition whose live coverage
  // fell behind, merging with the partition's last pending gap call.
  void PlanGaps(absl::Time live_start);

  const LaneOptions options_;
  const absl::Time start_;
  const uint32_t partitions_;
  absl::Time backfill_begin_;
  absl::Time backfill_end_;
  uint64_t chunks_total_ = 0;
  uint64_t chunks_done_ = 0;

  // Calls never handed out are generated on demand from this cursor
  // (chunk-major, call id = chunk * partitions + partition), so a long
  // backfill over many zone groups costs no memory up front.
  uint64_t next_call_ = 0;
  std::deque<BackfillCall> retries_;  // failed calls, oldest first
  absl::flat_hash_set<uint64_t> in_flight_;  // call ids handed out, unreported
  absl::flat_hash_map<uint64_t, uint32_t> remaining_;  // started chunk -> calls
                                                       // not yet succeeded

  // Per partition, the end of the time its successful live fetches and
  // planned gap calls cover. Starts where the startup backfill ends.
  std::vector<absl::Time> covered_until_;
  std::deque<GapCall> gaps_;  // pending, oldest first
  std::vector<GapCall> gaps_in_flight_;
  absl::Duration gap_scheduled_;
};

}  // namespace converge

#endif  // CONVERGE_LANES_H_

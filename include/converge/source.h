// The contract between the pipeline and a data source (sim, replay, and later
// the Cloudflare GraphQL API).
//
// A source does two jobs on two kinds of thread:
//   * planning, on the single scheduler thread: NextTick() says what to fetch
//     in the next tick and at which `now`, and OnTaskDone() learns how each
//     fetch ended (so a backfill cursor only advances on success);
//   * fetching, on any fetcher thread, concurrently: Fetch() turns one task
//     into observations. Fetch() must be safe to call from several threads at
//     once and must depend only on the task, so that the same tasks produce the
//     same observations whatever the number of fetchers.

#ifndef CONVERGE_SOURCE_H_
#define CONVERGE_SOURCE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <optional>
#include <stop_token>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "converge/observation.h"
#include "converge/observation_batch.h"

namespace converge {

// The scheduling lane of a fetch.
enum class Lane : uint8_t {
  kLive = 0,      // [now - lookback, now], every tick, uncapped
  kBackfill = 1,  // older data, a capped number of calls per tick
  kReplay = 2,    // one recorded fetch
  kGap = 3,       // minutes that fell out of the live range while paused
};

std::string_view LaneName(Lane lane);

// Half-open time range [start, end).
struct TimeRange {
  absl::Time start;
  absl::Time end;
};

// Lane progress a source reports for logs, the summary and metrics.
struct SourceStats {
  uint64_t backfill_chunks_total = 0;
  uint64_t backfill_chunks_done = 0;
  absl::Duration gap_scheduled;  // time range planned on the gap lane

  // For sources that call an API with a query budget (Cloudflare); zeros
  // elsewhere.
  uint64_t api_queries = 0;           // requests sent so far
  double api_budget_per_tick = 0;     // queries the budget allows per tick
  double api_needed_per_tick = 0;     // live + backfill queries per tick
  // Requests by dataset, and failures by (dataset, cause), e.g.
  // ("httpRequests1mGroups", "timeout"); dataset "none" for failures outside
  // a fetch, such as listing zones.
  std::map<std::string, uint64_t> api_queries_by_dataset;
  std::map<std::pair<std::string, std::string>, uint64_t> failures;
};

// One unit of fetching work: one call to the upstream API.
struct FetchTask {
  uint64_t tick = 0;    // the tick that planned this task
  uint32_t index = 0;   // position inside the tick, 0 .. task_count - 1
  Lane lane = Lane::kLive;
  TimeRange range;
  uint32_t partition = 0;  // source-defined: a zone group, a recorded file
  absl::Time now;          // the tick's `now`, for sources whose data ages
};

// Everything one tick fetches. The engine expires windows at `now` after every
// observation of these tasks has been ingested.
struct TickPlan {
  uint64_t tick = 0;
  absl::Time now;
  std::vector<FetchTask> tasks;  // tasks[i].index == i, tasks[i].tick == tick
};

class Source {
 public:
  virtual ~Source() = default;

  // Short name for logs, e.g. "sim".
  virtual std::string_view name() const = 0;

  // Scheduler thread only. Returns the next tick, or std::nullopt when the
  // input has ended (replay exhausted, simulated duration reached) or `stop`
  // was requested. A paced source blocks here until the tick is due and
  // returns promptly once `stop` is requested.
  virtual std::optional<TickPlan> NextTick(std::stop_token stop) = 0;

  // Any fetcher thread, concurrently. Appends the observations of `task` to
  // `out`. A failed fetch returns a non-OK status and its observations are
  // discarded: failed fetches are not observations. kUnavailable marks a
  // failure worth retrying on a later tick.
  virtual absl::Status Fetch(const FetchTask& task, ObservationBatch* out) = 0;

  // Scheduler thread only. Reports how a task planned by NextTick() ended.
  // Called once per task, before the NextTick() that follows the task's tick.
  virtual void OnTaskDone(const FetchTask& task, const absl::Status& status) {
    (void)task;
    (void)status;
  }

  // Scheduler thread only. Lane progress so far; sources without lanes
  // report zeros.
  virtual SourceStats Stats() const { return {}; }
};

}  // namespace converge

#endif  // CONVERGE_SOURCE_H_

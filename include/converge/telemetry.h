// Live views of a running pipeline, for the /metrics and /ready endpoints.
//
// Workers publish their counters at coarse points (a shard after each tick,
// the sink after each batch), and Pipeline::Snapshot() copies the latest
// published values. A snapshot is therefore consistent per component but
// components may be up to one tick or one batch apart.

#ifndef CONVERGE_TELEMETRY_H_
#define CONVERGE_TELEMETRY_H_

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "absl/time/time.h"
#include "converge/engine.h"
#include "converge/source.h"

namespace converge {

// A fixed-bucket histogram. Not thread-safe; each owner keeps its own and
// snapshots merge them with Add().
class Histogram {
 public:
  Histogram() = default;
  // `upper_bounds` must be sorted ascending; a last +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds)
      : upper_bounds_(std::move(upper_bounds)),
        counts_(upper_bounds_.size() + 1, 0) {}

  void Observe(double value) {
    size_t bucket = 0;
    while (bucket < upper_bounds_.size() && value > upper_bounds_[bucket]) {
      ++bucket;
    }
    ++counts_[bucket];
    sum_ += value;
    ++count_;
  }

  // Adds the observations of `other`. REQUIRES: the same bounds.
  void Add(const Histogram& other) {
    if (counts_.empty()) {
      *this = other;
      return;
    }
    for (size_t i = 0; i < counts_.size() && i < other.counts_.size(); ++i) {
      counts_[i] += other.counts_[i];
    }
    sum_ += other.sum_;
    count_ += other.count_;
  }

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Per bucket, not cumulative; the last entry is the +Inf bucket.
  const std::vector<uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> upper_bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Seconds from a bucket's start to the first push of its value.
Histogram MakeFirstPushAgeHistogram();
// Relative change |new - old| / old of a value pushed again.
Histogram MakeCorrectionSizeHistogram();

inline constexpr int kLaneCount = 4;  // the values of `Lane`

// Fetch counts of one lane.
struct LaneCounters {
  uint64_t fetches_ok = 0;
  uint64_t fetches_failed = 0;
  uint64_t fetches_skipped = 0;  // queued when a stop arrived
  uint64_t observations = 0;
};

struct ShardSnapshot {
  EngineStats engine;
  uint64_t queue_depth = 0;  // messages waiting, each up to 4096 observations (estimate)
  uint64_t ticks_completed = 0;
  double cpu_seconds = 0;  // CPU time the shard thread has used
};

struct SinkSnapshot {
  uint64_t received = 0;
  uint64_t delivered = 0;
  uint64_t rejected = 0;
  uint64_t undelivered = 0;
  uint64_t superseded = 0;
  uint64_t pushes = 0;
  uint64_t retries = 0;
  uint64_t batches = 0;
  absl::Duration retry_wait;
  std::map<int, uint64_t> rejected_by_http_status;  // 0: no HTTP status
  uint64_t queue_depth = 0;  // samples waiting (estimate)
};

struct PipelineSnapshot {
  std::vector<ShardSnapshot> shards;
  SinkSnapshot sink;
  SourceStats source;
  std::array<LaneCounters, kLaneCount> lanes;  // indexed by Lane
  uint64_t ticks_started = 0;
  uint64_t task_queue_depth = 0;
  Histogram first_push_age_seconds;
  Histogram correction_size;
  // The first tick's fetches are done and at least one succeeded.
  bool first_fetch_done = false;
  // The sink delivered a batch, or nothing had been emitted to deliver once
  // every shard completed the first tick.
  bool sink_ready = false;
  bool stopping = false;
};

}  // namespace converge

#endif  // CONVERGE_TELEMETRY_H_

// Convergence analysis for converge-report: how long (series, bucket) values
// take to settle in an observation stream, and what each stabilization
// threshold would have pushed for the same stream.
//
// Thread safety: a ConvergenceAnalyzer is used by one thread at a time.

#ifndef CONVERGE_REPORT_CONVERGENCE_H_
#define CONVERGE_REPORT_CONVERGENCE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/engine.h"
#include "converge/observation.h"
#include "converge/source.h"

namespace converge {

// Thresholds a report compares at most, so that the bar chart stays legible.
inline constexpr size_t kMaxReportThresholds = 12;

struct AnalysisOptions {
  // Thresholds to compare, each run by its own engine. Ascending, distinct,
  // each from 1 to 65535, at most kMaxReportThresholds of them.
  std::vector<int> thresholds = {1, 2, 3, 4, 5, 6};
  // Engine settings shared by every threshold (see EngineOptions).
  absl::Duration window_ttl = absl::Minutes(15);
  absl::Duration lookback = absl::Minutes(10);
};

// Returns OK, or kInvalidArgument naming the field, the value and the rule.
absl::Status ValidateAnalysisOptions(const AnalysisOptions& options);

// When (series, bucket) values reached the value they kept until the end of
// the input. Only buckets seen changing value count: a bucket that never
// changed while observed gives no settle age, and a bucket still observed in
// the last tick may change again.
struct SettleResult {
  uint64_t counted = 0;      // buckets seen changing, no longer observed
  uint64_t unchanged = 0;    // left out: one value in every observation
  uint64_t open_at_end = 0;  // left out: observed in the last tick

  // Empirical distribution of the counted buckets' settle ages: each distinct
  // age in minutes with the share of buckets settled at that age or younger.
  std::vector<std::pair<double, double>> cdf_steps;
  // Entry m: share of counted buckets settled at an age of m minutes or less,
  // for m from 0 to the oldest settle age rounded up. Empty when none count.
  std::vector<double> share_by_minute;

  // Settle ages of the counted buckets in minutes, or 0 when none count.
  double mean_minutes = 0;
  double median_minutes = 0;
  double p90_minutes = 0;
  double max_minutes = 0;
};

// Samples and push ages one threshold would have produced for the input.
struct ThresholdResult {
  int threshold = 0;
  EngineStats stats;  // samples by cause, corrections, late observations

  uint64_t buckets_pushed = 0;    // (series, bucket) pairs with a sample
  uint64_t buckets_repushed = 0;  // pairs pushed more than once
  // Pairs whose first pushed value is the last value the input showed.
  uint64_t first_push_last_value = 0;
  // Samples per (series, bucket) pair of the input.
  double pushes_per_bucket = 0;

  // Age (the tick's `now` minus the bucket start) when a pair's first
  // sample was emitted, in minutes, over the pushed pairs. Samples flushed at
  // the end of the input count at the latest `now` of any tick.
  double first_push_age_mean_minutes = 0;
  double first_push_age_p90_minutes = 0;
};

struct ConvergenceReport {
  std::string input;  // what was analyzed, for titles
  AnalysisOptions options;

  uint64_t ticks = 0;
  uint64_t fetches_ok = 0;
  uint64_t fetches_failed = 0;  // skipped: a failed fetch adds no observations
  uint64_t observations = 0;
  uint64_t series = 0;
  uint64_t buckets = 0;  // distinct (series, bucket) pairs

  SettleResult settle;
  std::vector<ThresholdResult> thresholds;  // ascending by threshold
};

// Consumes an observation stream tick by tick. Every threshold's engine
// ingests the observations of a tick in the order given, then runs
// Expire(now).
class ConvergenceAnalyzer {
 public:
  // Returns kInvalidArgument when `options` fails ValidateAnalysisOptions().
  static absl::StatusOr<std::unique_ptr<ConvergenceAnalyzer>> Create(
      const AnalysisOptions& options);

  ConvergenceAnalyzer(const ConvergenceAnalyzer&) = delete;
  ConvergenceAnalyzer& operator=(const ConvergenceAnalyzer&) = delete;

  // Records every observation of one tick fetched at `now`.
  void AddTick(absl::Time now, std::span<const Observation> observations);

  // Flushes every engine and computes the results. Call once, last.
  ConvergenceReport Finish();

 private:
  using BucketKey = std::pair<uint32_t, int64_t>;  // series id, bucket_ms

  // The observed history of one (series, bucket).
  struct BucketTrack {
    uint64_t last_value = 0;
    absl::Duration run_start_age;  // age when last_value was first seen
    uint64_t last_tick = 0;
    bool changed = false;
  };

  // Pushes of one threshold's engine for one (series, bucket).
  struct PushTrack {
    uint32_t pushes = 0;
    uint64_t first_value = 0;
  };

  struct ThresholdRun {
    std::unique_ptr<Engine> engine;
    absl::flat_hash_map<BucketKey, PushTrack> pushes;
    std::vector<double> first_push_ages_minutes;
  };

  ConvergenceAnalyzer(const AnalysisOptions& options,
                      std::vector<ThresholdRun> runs);

  uint32_t SeriesId(const SeriesKey& series);
  void RecordObservation(absl::Time now, const Observation& observation);
  void RecordSamples(absl::Time now, const std::vector<Sample>& samples,
                     ThresholdRun* run);
  SettleResult ComputeSettle() const;
  ThresholdResult ComputeThreshold(const ThresholdRun& run) const;

  const AnalysisOptions options_;
  std::vector<ThresholdRun> runs_;
  absl::flat_hash_map<std::string, uint32_t> series_ids_;  // by encoding
  absl::flat_hash_map<BucketKey, BucketTrack> buckets_;
  uint64_t ticks_ = 0;
  uint64_t observations_ = 0;
  absl::Time latest_now_ = absl::InfinitePast();
  std::vector<Sample> samples_;  // reused buffer
};

// Runs `source` to its end on this thread: for each tick, fetches every task
// in order, reports each outcome with OnTaskDone(), and hands the tick's
// observations to a ConvergenceAnalyzer. Failed fetches are counted and
// skipped. Returns kInvalidArgument for invalid `options`.
absl::StatusOr<ConvergenceReport> AnalyzeSource(Source& source,
                                                const AnalysisOptions& options);

}  // namespace converge

#endif  // CONVERGE_REPORT_CONVERGENCE_H_

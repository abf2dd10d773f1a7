#include "report/convergence.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stop_token>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace converge {
namespace {

constexpr int kMaxThreshold = 65535;  // the exporter's --threshold limit

double ToMinutes(absl::Duration duration) {
  return absl::ToDoubleMinutes(duration);
}

// Nearest-rank percentile of ascending `values`. REQUIRES: not empty.
double Percentile(const std::vector<double>& sorted, double fraction) {
  const auto rank = static_cast<size_t>(
      std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

double Mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) /
         static_cast<double>(values.size());
}

}  // namespace

absl::Status ValidateAnalysisOptions(const AnalysisOptions& options) {
  if (options.thresholds.empty() ||
      options.thresholds.size() > kMaxReportThresholds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "thresholds must list 1 to ", kMaxReportThresholds, " values, got ",
        options.thresholds.size()));
  }
  for (size_t i = 0; i < options.thresholds.size(); ++i) {
    const int threshold = options.thresholds[i];
    if (threshold < 1 || threshold > kMaxThreshold) {
      return absl::InvalidArgumentError(
          absl::StrCat("thresholds must be from 1 to ", kMaxThreshold,
                       ", got ", threshold));
    }
    if (i > 0 && threshold <= options.thresholds[i - 1]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "thresholds must be ascending and distinct, got ",
          absl::StrJoin(options.thresholds, ",")));
    }
  }

  EngineOptions engine;
  engine.window_ttl = options.window_ttl;
  engine.lookback = options.lookback;
  return ValidateEngineOptions(engine);
}

absl::StatusOr<std::unique_ptr<ConvergenceAnalyzer>>
ConvergenceAnalyzer::Create(const AnalysisOptions& options) {
  if (absl::Status status = ValidateAnalysisOptions(options); !status.ok()) {
    return status;
  }

  std::vector<ThresholdRun> runs;
  for (int threshold : options.thresholds) {
    EngineOptions engine_options;
    engine_options.threshold = threshold;
    engine_options.window_ttl = options.window_ttl;
    engine_options.lookback = options.lookback;
    absl::StatusOr<std::unique_ptr<Engine>> engine =
        Engine::Create(engine_options);
    if (!engine.ok()) return engine.status();
    ThresholdRun run;
    run.engine = *std::move(engine);
    runs.push_back(std::move(run));
  }
  return std::unique_ptr<ConvergenceAnalyzer>(
      new ConvergenceAnalyzer(options, std::move(runs)));
}

ConvergenceAnalyzer::ConvergenceAnalyzer(const AnalysisOptions& options,
                                         std::vector<ThresholdRun> runs)
    : options_(options), runs_(std::move(runs)) {}

uint32_t ConvergenceAnalyzer::SeriesId(const SeriesKey& series) {
  const auto [it, inserted] = series_ids_.try_emplace(
      series.encoded(), static_cast<uint32_t>(series_ids_.size()));
  return it->second;
}

void ConvergenceAnalyzer::AddTick(absl::Time now,
                                  std::span<const Observation> observations) {
  for (const Observation& observation : observations) {
    RecordObservation(now, observation);
  }

  for (ThresholdRun& run : runs_) {
    samples_.clear();
    for (const Observation& observation : observations) {
      run.engine->Ingest(observation, &samples_);
    }
    run.engine->Expire(now, &samples_);
    RecordSamples(now, samples_, &run);
  }

  observations_ += observations.size();
  latest_now_ = std::max(latest_now_, now);
  ++ticks_;
}

void ConvergenceAnalyzer::RecordObservation(absl::Time now,
                                            const Observation& observation) {
  const BucketKey key{SeriesId(observation.series), observation.bucket_ms};
  const absl::Duration age = now - absl::FromUnixMillis(observation.bucket_ms);
  const auto [it, inserted] = buckets_.try_emplace(key);
  BucketTrack& track = it->second;

  if (inserted) {
    track.last_value = observation.value;
    track.run_start_age = age;
  } else if (observation.value != track.last_value) {
    track.last_value = observation.value;
    track.run_start_age = age;
    track.changed = true;
  }
  track.last_tick = ticks_;
}

void ConvergenceAnalyzer::RecordSamples(absl::Time now,
                                        const std::vector<Sample>& samples,
                                        ThresholdRun* run) {
  for (const Sample& sample : samples) {
    const BucketKey key{SeriesId(sample.series), sample.timestamp_ms};
    PushTrack& track = run->pushes[key];
    if (track.pushes == 0) {
      track.first_value = sample.value;
      run->first_push_ages_minutes.push_back(
          ToMinutes(now - absl::FromUnixMillis(sample.timestamp_ms)));
    }
    ++track.pushes;
  }
}

ConvergenceReport ConvergenceAnalyzer::Finish() {
  // Flushed samples count at the latest `now` of the input. A replay may
  // go back in time (backfill chunks recorded after the live fetch), so the
  // last tick's `now` could precede some buckets.
  for (ThresholdRun& run : runs_) {
    samples_.clear();
    run.engine->Flush(&samples_);
    RecordSamples(latest_now_, samples_, &run);
  }

  ConvergenceReport report;
  report.options = options_;
  report.ticks = ticks_;
  report.observations = observations_;
  report.series = series_ids_.size();
  report.buckets = buckets_.size();
  report.settle = ComputeSettle();
  for (const ThresholdRun& run : runs_) {
    report.thresholds.push_back(ComputeThreshold(run));
  }
  return report;
}

SettleResult ConvergenceAnalyzer::ComputeSettle() const {
  SettleResult result;
  std::vector<double> ages;
  const uint64_t last_tick = ticks_ == 0 ? 0 : ticks_ - 1;
  for (const auto& [key, track] : buckets_) {
    if (track.last_tick == last_tick) {
      ++result.open_at_end;
    } else if (!track.changed) {
      ++result.unchanged;
    } else {
      ages.push_back(ToMinutes(track.run_start_age));
    }
  }
  result.counted = ages.size();
  if (ages.empty()) return result;

  std::sort(ages.begin(), ages.end());
  const auto total = static_cast<double>(ages.size());
  for (size_t i = 0; i < ages.size(); ++i) {
    // One step per distinct age, at the last bucket with that age.
    if (i + 1 == ages.size() || ages[i + 1] != ages[i]) {
      result.cdf_steps.emplace_back(ages[i],
                                    static_cast<double>(i + 1) / total);
    }
  }

  // A settle age is negative only when `now` precedes the bucket start. No
  // built-in source produces that, and such buckets count from minute 0.
  const auto minutes =
      static_cast<size_t>(std::max(0.0, std::ceil(ages.back())));
  size_t settled = 0;
  for (size_t minute = 0; minute <= minutes; ++minute) {
    while (settled < ages.size() &&
           ages[settled] <= static_cast<double>(minute)) {
      ++settled;
    }
    result.share_by_minute.push_back(static_cast<double>(settled) / total);
  }

  result.mean_minutes = Mean(ages);
  result.median_minutes = Percentile(ages, 0.5);
  result.p90_minutes = Percentile(ages, 0.9);
  result.max_minutes = ages.back();
  return result;
}

ThresholdResult ConvergenceAnalyzer::ComputeThreshold(
    const ThresholdRun& run) const {
  ThresholdResult result;
  result.threshold = run.engine->options().threshold;
  result.stats = run.engine->stats();
  result.buckets_pushed = run.pushes.size();

  for (const auto& [key, push] : run.pushes) {
    if (push.pushes > 1) ++result.buckets_repushed;
    const auto bucket = buckets_.find(key);
    if (bucket != buckets_.end() &&
        bucket->second.last_value == push.first_value) {
      ++result.first_push_last_value;
    }
  }
  if (!buckets_.empty()) {
    result.pushes_per_bucket =
        static_cast<double>(result.stats.samples_total()) /
        static_cast<double>(buckets_.size());
  }

  std::vector<double> ages = run.first_push_ages_minutes;
  if (!ages.empty()) {
    std::sort(ages.begin(), ages.end());
    result.first_push_age_mean_minutes = Mean(ages);
    result.first_push_age_p90_minutes = Percentile(ages, 0.9);
  }
  return result;
}

absl::StatusOr<ConvergenceReport> AnalyzeSource(
    Source& source, const AnalysisOptions& options) {
  absl::StatusOr<std::unique_ptr<ConvergenceAnalyzer>> analyzer =
      ConvergenceAnalyzer::Create(options);
  if (!analyzer.ok()) return analyzer.status();

  uint64_t fetches_ok = 0;
  uint64_t fetches_failed = 0;
  std::vector<Observation> tick_observations;
  ObservationBatch task_observations;
  // A default std::stop_token never requests a stop: the loop ends when the
  // source's input does.
  while (std::optional<TickPlan> plan = source.NextTick(std::stop_token())) {
    tick_observations.clear();
    for (const FetchTask& task : plan->tasks) {
      task_observations.Clear();
      const absl::Status status = source.Fetch(task, &task_observations);
      if (status.ok()) {
        ++fetches_ok;
        task_observations.AppendTo(&tick_observations);
      } else {
        // Only the first failure is logged; the total is logged at the end.
        if (fetches_failed == 0) {
          spdlog::warn(
              "fetch failed, its observations are skipped: tick {} task {} "
              "({}): {}",
              task.tick, task.index, LaneName(task.lane), status.ToString());
        }
        ++fetches_failed;
      }
      source.OnTaskDone(task, status);
    }
    (*analyzer)->AddTick(plan->now, tick_observations);
  }
  if (fetches_failed > 0) {
    spdlog::warn(
        "{} of {} fetches failed, and the report covers only the rest",
        fetches_failed, fetches_failed + fetches_ok);
  }

  ConvergenceReport report = (*analyzer)->Finish();
  report.fetches_ok = fetches_ok;
  report.fetches_failed = fetches_failed;
  return report;
}

}  // namespace converge

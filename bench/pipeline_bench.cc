// The whole pipeline on workload W1: fetcher threads generate W1 ticks, the
// shards ingest them, and a null sink discards the samples.
//
//   BM_PipelineW1/shards:S/fetchers:F/fresh_keys:K
//
// W1Source plans one fetch task per group of kZonesPerTask zones and tick.
// With fresh_keys:1 a fetch builds every key with SeriesKey::FromViews(), as
// a real source does after parsing a response. With fresh_keys:0 it copies
// the bytes of keys built in advance into the fetch's batch, which leaves the
// fetchers less work, so the shards and queues show through. The time is
// wall-clock time of Pipeline::Run().
// Counters:
//   samples      samples the sink received (the shutdown Flush() included)
//   settled      stable plus forced samples; must equal W1's 5,700,000
//   shard_cpu_seconds_max       CPU time of the busiest shard thread
//   shard_bound_obs_per_second  observations divided by that time: the rate
//                               the shards alone would sustain, each on a
//                               core of its own

#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/w1_workload.h"
#include "converge/pipeline.h"
#include "converge/sinks.h"
#include "converge/source.h"

namespace converge::bench {
namespace {

// Ten zones per task, like one Cloudflare GraphQL query.
constexpr int kZonesPerTask = 10;

// A Source that replays W1: tick k at now = T0 + 30 s * k, one task per
// zone group, each returning its zones' observations in W1 order.
class W1Source final : public Source {
 public:
  W1Source(const W1Shape& shape, bool fresh_keys)
      : shape_(shape), fresh_keys_(fresh_keys) {
    for (int z = 0; z < shape.zones; ++z) {
      zones_.push_back(absl::StrCat("zone-", z));
    }
    for (int s = 0; s < shape.series_per_zone; ++s) {
      statuses_.push_back(absl::StrCat(200 + s));
    }
    if (!fresh_keys_) {
      for (int z = 0; z < shape.zones; ++z) {
        for (int s = 0; s < shape.series_per_zone; ++s) {
          keys_.push_back(MakeKey(z, s));
        }
      }
    }
  }

  std::string_view name() const override { return "w1"; }

  std::optional<TickPlan> NextTick(std::stop_token stop) override {
    if (stop.stop_requested() || next_tick_ >= shape_.ticks) {
      return std::nullopt;
    }
    const int tick = next_tick_++;
    TickPlan plan;
    plan.tick = static_cast<uint64_t>(tick);
    plan.now = absl::FromUnixMillis(W1NowMs(tick));
    const int groups = (shape_.zones + kZonesPerTask - 1) / kZonesPerTask;
    for (int group = 0; group < groups; ++group) {
      FetchTask task;
      task.tick = plan.tick;
      task.index = static_cast<uint32_t>(group);
      task.lane = Lane::kLive;
      task.range =
          TimeRange{absl::FromUnixMillis(W1BucketMs(W1FirstMinute(tick))),
                    absl::FromUnixMillis(W1BucketMs(W1LastMinute(tick) + 1))};
      task.partition = static_cast<uint32_t>(group);
      task.now = plan.now;
      plan.tasks.push_back(task);
    }
    return plan;
  }

  absl::Status Fetch(const FetchTask& task, ObservationBatch* out) override {
    const int tick = static_cast<int>(task.tick);
    const int first_zone = static_cast<int>(task.partition) * kZonesPerTask;
    const int end_zone = std::min(shape_.zones, first_zone + kZonesPerTask);
    ForEachW1Observation(
        shape_, tick, first_zone, end_zone,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          if (fresh_keys_) {
            out->Add(MakeKey(z, s), bucket_ms, value);
          } else {
            out->Add(keys_[static_cast<size_t>(z) * shape_.series_per_zone + s],
                     bucket_ms, value);
          }
        });
    return absl::OkStatus();
  }

 private:
  SeriesKey MakeKey(int zone, int series) const {
    return *SeriesKey::FromViews(
        kW1Metric, {{"zone", zones_[zone]}, {"status", statuses_[series]}});
  }

  // Constant after construction; Fetch() reads them from many threads.
  const W1Shape shape_;
  const bool fresh_keys_;
  std::vector<std::string> zones_;
  std::vector<std::string> statuses_;
  std::vector<SeriesKey> keys_;

  // Scheduler thread only.
  int next_tick_ = 0;
};

void BM_PipelineW1(benchmark::State& state) {
  const int shards = static_cast<int>(state.range(0));
  const int fetchers = static_cast<int>(state.range(1));
  const bool fresh_keys = state.range(2) != 0;
  spdlog::set_level(spdlog::level::warn);

  PipelineSummary summary;
  std::vector<double> shard_cpu_seconds;
  for (auto _ : state) {
    state.PauseTiming();
    PipelineOptions options;
    options.shards = shards;
    options.fetchers = fetchers;
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
        options, std::make_unique<W1Source>(kW1, fresh_keys), MakeNullSink());
    if (!pipeline.ok()) {
      state.SkipWithError(pipeline.status().ToString().c_str());
      return;
    }
    state.ResumeTiming();

    absl::StatusOr<PipelineSummary> result = (*pipeline)->Run();

    state.PauseTiming();
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      return;
    }
    summary = *result;
    shard_cpu_seconds.clear();
    for (const ShardSnapshot& shard : (*pipeline)->Snapshot().shards) {
      shard_cpu_seconds.push_back(shard.cpu_seconds);
    }
    pipeline->reset();
    state.ResumeTiming();
  }

  state.SetItemsProcessed(static_cast<int64_t>(summary.observations_fetched) *
                          state.iterations());
  state.counters["samples"] = static_cast<double>(summary.samples_delivered);
  const uint64_t settled =
      summary.engine.samples_stable + summary.engine.samples_forced;
  state.counters["settled"] = static_cast<double>(settled);
  // The busiest shard thread's CPU time, and the rate the shards would
  // sustain if each had a core of its own and nothing else ran.
  const double busiest =
      *std::max_element(shard_cpu_seconds.begin(), shard_cpu_seconds.end());
  state.counters["shard_cpu_seconds_max"] = busiest;
  state.counters["shard_bound_obs_per_second"] =
      static_cast<double>(summary.observations_fetched) / busiest;
  if (summary.observations_fetched != W1Observations(kW1)) {
    state.SkipWithError("the pipeline did not fetch every W1 observation");
  } else if (settled != kW1ExpectedDigest.count) {
    state.SkipWithError("stable plus forced samples differ from W1's count");
  }
}

BENCHMARK(BM_PipelineW1)
    ->ArgNames({"shards", "fetchers", "fresh_keys"})
    ->Args({1, 1, 0})
    ->Args({2, 1, 0})
    ->Args({1, 2, 0})
    ->Args({2, 2, 0})
    ->Args({1, 2, 1})
    ->Args({2, 2, 1})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace converge::bench

// Pipeline tests with real threads: determinism across shard and fetcher
// counts, backpressure, shutdown and the sink's delivery accounting.
//
// Threads are coordinated with latches and counters. The one place that
// waits for something NOT to happen (backpressure) waits for progress to
// stop, so a slow machine can only make it pass more easily.

#include "converge/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "pipeline/batch_pool.h"

namespace converge {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kStartMs = 1'780'272'000'000;  // 2026-06-01T00:00:00Z

// Each tick re-fetches the last ten minutes of `zones` x `series` series in
// several tasks per tick (one per zone), with values that grow for four
// minutes and then settle, and a correction now and then.
class ScriptedSource : public Source {
 public:
  ScriptedSource(int zones, int series, uint64_t ticks)
      : zones_(zones), series_(series), ticks_(ticks) {}

  std::string_view name() const override { return "scripted"; }

  std::optional<TickPlan> NextTick(std::stop_token stop) override {
    if (stop.stop_requested() || next_tick_ >= ticks_) return std::nullopt;
    TickPlan plan;
    plan.tick = next_tick_;
    plan.now = absl::FromUnixMillis(kStartMs + next_tick_ * 30'000);
    for (int zone = 0; zone < zones_; ++zone) {
      FetchTask task;
      task.tick = next_tick_;
      task.index = static_cast<uint32_t>(zone);
      task.partition = static_cast<uint32_t>(zone);
      task.now = plan.now;
      plan.tasks.push_back(task);
    }
    ++next_tick_;
    ticks_planned_.fetch_add(1);
    return plan;
  }

  absl::Status Fetch(const FetchTask& task, ObservationBatch* out) override {
    fetches_.fetch_add(1);
    if (fail_partition_ >= 0 && task.partition == static_cast<uint32_t>(fail_partition_) &&
        task.tick % 3 == 1) {
      return absl::UnavailableError("scripted failure");
    }
    Append(task, out);
    return absl::OkStatus();
  }

  // The observations of one task, for the reference run.
  void Append(const FetchTask& task, ObservationBatch* out) const {
    const int64_t now_ms = absl::ToUnixMillis(task.now);
    const int64_t minute = (now_ms - kStartMs) / kMinuteMs;
    for (int64_t m = std::max<int64_t>(0, minute - 9); m <= minute; ++m) {
      const int64_t bucket = kStartMs + m * kMinuteMs;
      const int64_t age_half_minutes = (now_ms - bucket) / 30'000;
      for (int s = 0; s < series_; ++s) {
        uint64_t final_value = 1000 + (task.partition * 7919 + s * 104729 +
                                       m * 15485863) % 100000;
        uint64_t value =
            final_value * std::min<int64_t>(age_half_minutes, 4) / 4;
        // A later revision for some (series, bucket): lower, after settling.
        if ((task.partition + s + m) % 17 == 0 && age_half_minutes >= 12) {
          value -= 3;
        }
        out->Add(Key(task.partition, s), bucket, value);
      }
    }
  }

  static SeriesKey Key(uint32_t zone, int series) {
    return *SeriesKey::Make(
        "cloudflare_zone_requests_status",
        {{"zone", absl::StrCat("zone-", zone)},
         {"status", absl::StrCat(200 + series)}});
  }

  void FailPartitionSometimes(int partition) { fail_partition_ = partition; }
  uint64_t fetches() const { return fetches_.load(); }
  uint64_t ticks_planned() const { return ticks_planned_.load(); }

 private:
  const int zones_;
  const int series_;
  const uint64_t ticks_;
  int fail_partition_ = -1;
  uint64_t next_tick_ = 0;
  std::atomic<uint64_t> fetches_{0};
  std::atomic<uint64_t> ticks_planned_{0};
};

// Collects pushed samples. Optionally blocks pushes behind a gate, fails
// them, or rejects some batches.
class CollectingSink : public Sink {
 public:
  struct Shared {
    std::mutex mutex;
    std::condition_variable gate_changed;
    bool gate_open = true;
    std::vector<Sample> samples;  // guarded by mutex
    std::atomic<uint64_t> pushes{0};
    std::atomic<bool> always_unavailable{false};
    std::atomic<int> reject_every{0};  // reject every n-th batch when > 0
  };

  explicit CollectingSink(Shared* shared) : shared_(shared) {}

  std::string_view name() const override { return "collecting"; }

  absl::Status Push(std::span<const Sample> batch) override {
    const uint64_t push = shared_->pushes.fetch_add(1) + 1;
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->gate_changed.wait(lock, [&] { return shared_->gate_open; });
    if (shared_->always_unavailable.load()) {
      return absl::UnavailableError("receiver down");
    }
    const int reject_every = shared_->reject_every.load();
    if (reject_every > 0 && push % reject_every == 0) {
      return absl::InvalidArgumentError("HTTP 400: bad sample");
    }
    shared_->samples.insert(shared_->samples.end(), batch.begin(),
                            batch.end());
    return absl::OkStatus();
  }

 private:
  Shared* const shared_;
};

void SortSamples(std::vector<Sample>* samples) {
  std::sort(samples->begin(), samples->end(), SampleLess);
}

// Runs the same ticks through one engine on this thread.
std::vector<Sample> ReferenceRun(const PipelineOptions& options, int zones,
                                 int series, uint64_t ticks) {
  ScriptedSource source(zones, series, ticks);
  std::unique_ptr<Engine> engine = *Engine::Create(options.engine);
  std::vector<Sample> samples;
  std::stop_source never;
  while (std::optional<TickPlan> plan = source.NextTick(never.get_token())) {
    for (const FetchTask& task : plan->tasks) {
      ObservationBatch observations;
      source.Append(task, &observations);
      for (size_t i = 0; i < observations.size(); ++i) {
        const ObservationView observation = observations[i];
        engine->Ingest(observation.series, observation.bucket_ms,
                       observation.value, &samples);
      }
    }
    engine->Expire(plan->now, &samples);
  }
  engine->Flush(&samples);
  SortSamples(&samples);
  return samples;
}

class PipelineTest : public ::testing::Test {
 protected:
  PipelineOptions Options(int shards, int fetchers) {
    PipelineOptions options;
    options.shards = shards;
    options.fetchers = fetchers;
    options.shard_queue_capacity = 64;  // small, to exercise blocking
    options.sink_queue_capacity = 64;
    options.batch_max_samples = 100;
    options.flush_interval = absl::Milliseconds(20);
    options.retry_min = absl::Milliseconds(1);
    options.retry_max = absl::Milliseconds(5);
    options.shutdown_timeout = absl::Seconds(30);
    return options;
  }

  absl::StatusOr<PipelineSummary> RunPipeline(
      const PipelineOptions& options, std::unique_ptr<Source> source) {
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
        options, std::move(source), std::make_unique<CollectingSink>(&sink_));
    if (!pipeline.ok()) return pipeline.status();
    return (*pipeline)->Run();
  }

  std::vector<Sample> Collected() {
    std::lock_guard<std::mutex> lock(sink_.mutex);
    std::vector<Sample> samples = sink_.samples;
    SortSamples(&samples);
    return samples;
  }

  void SetGate(bool open) {
    {
      std::lock_guard<std::mutex> lock(sink_.mutex);
      sink_.gate_open = open;
    }
    sink_.gate_changed.notify_all();
  }

  CollectingSink::Shared sink_;
};

void ExpectSameSamples(const std::vector<Sample>& actual,
                       const std::vector<Sample>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_EQ(actual[i].series, expected[i].series) << "sample " << i;
    ASSERT_EQ(actual[i].timestamp_ms, expected[i].timestamp_ms)
        << "sample " << i;
    ASSERT_EQ(actual[i].value, expected[i].value) << "sample " << i;
    ASSERT_EQ(actual[i].cause, expected[i].cause) << "sample " << i;
  }
}

TEST_F(PipelineTest, MatchesSingleEngineForAnyShardsAndFetchers) {
  const int zones = 6, series = 5;
  const uint64_t ticks = 50;
  const std::vector<Sample> expected =
      ReferenceRun(Options(1, 1), zones, series, ticks);
  ASSERT_FALSE(expected.empty());

  for (int shards : {1, 2, 4, 7}) {
    for (int fetchers : {1, 3}) {
      SCOPED_TRACE(absl::StrCat("shards=", shards, " fetchers=", fetchers));
      {
        std::lock_guard<std::mutex> lock(sink_.mutex);
        sink_.samples.clear();
      }
      absl::StatusOr<PipelineSummary> summary = RunPipeline(
          Options(shards, fetchers),
          std::make_unique<ScriptedSource>(zones, series, ticks));
      ASSERT_TRUE(summary.ok()) << summary.status();
      EXPECT_EQ(summary->ticks, ticks);
      EXPECT_FALSE(summary->stopped_by_request);
      EXPECT_EQ(summary->samples_delivered, expected.size());
      EXPECT_EQ(summary->engine.samples_total(), expected.size());
      EXPECT_EQ(summary->samples_undelivered, 0u);
      ExpectSameSamples(Collected(), expected);
    }
  }
}

TEST_F(PipelineTest, LargeFetchesSpanSeveralMessages) {
  // 1,000 series x up to 10 buckets per task: more observations per shard
  // than one message carries (4,096), so a task reaches each shard in
  // pieces.
  const int zones = 2, series = 1000;
  const uint64_t ticks = 20;
  const std::vector<Sample> expected =
      ReferenceRun(Options(1, 1), zones, series, ticks);
  ASSERT_FALSE(expected.empty());

  for (int shards : {1, 2}) {
    SCOPED_TRACE(absl::StrCat("shards=", shards));
    {
      std::lock_guard<std::mutex> lock(sink_.mutex);
      sink_.samples.clear();
    }
    PipelineOptions options = Options(shards, 2);
    options.sink_queue_capacity = 4096;
    absl::StatusOr<PipelineSummary> summary = RunPipeline(
        options, std::make_unique<ScriptedSource>(zones, series, ticks));
    ASSERT_TRUE(summary.ok()) << summary.status();
    // Tick k fetches k / 2 + 1 buckets: 110 in all.
    EXPECT_EQ(summary->observations_fetched, uint64_t{110} * zones * series);
    EXPECT_EQ(summary->samples_delivered, expected.size());
    ExpectSameSamples(Collected(), expected);
  }
}

TEST_F(PipelineTest, PerSeriesOrderIsSameForAnyShards) {
  // With threshold 1 a series pushes several buckets per tick, and
  // corrections re-push a bucket, so the order within a series matters.
  auto per_series_run = [&](int shards, int fetchers) {
    {
      std::lock_guard<std::mutex> lock(sink_.mutex);
      sink_.samples.clear();
    }
    PipelineOptions options = Options(shards, fetchers);
    options.engine.threshold = 1;
    EXPECT_TRUE(
        RunPipeline(options, std::make_unique<ScriptedSource>(4, 3, 30)).ok());
    std::map<std::string, std::vector<std::pair<int64_t, uint64_t>>> result;
    std::lock_guard<std::mutex> lock(sink_.mutex);
    for (const Sample& sample : sink_.samples) {
      result[sample.series.encoded()].emplace_back(sample.timestamp_ms,
                                                   sample.value);
    }
    return result;
  };

  const auto single = per_series_run(1, 1);
  ASSERT_FALSE(single.empty());
  EXPECT_EQ(per_series_run(3, 3), single);
  EXPECT_EQ(per_series_run(7, 2), single);
}

TEST_F(PipelineTest, FailedFetchIsCountedNotObserved) {
  auto source = std::make_unique<ScriptedSource>(3, 2, 12);
  source->FailPartitionSometimes(1);
  absl::StatusOr<PipelineSummary> summary =
      RunPipeline(Options(2, 2), std::move(source));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->fetches_failed, 4u);  // ticks 1, 4, 7, 10
  EXPECT_EQ(summary->fetches_ok, 12u * 3 - 4);
  EXPECT_EQ(summary->samples_delivered, summary->engine.samples_total());
}

TEST_F(PipelineTest, RejectedBatchDoesNotBlockLater) {
  sink_.reject_every.store(2);
  absl::StatusOr<PipelineSummary> summary =
      RunPipeline(Options(2, 2), std::make_unique<ScriptedSource>(4, 5, 30));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_GT(summary->samples_rejected, 0u);
  EXPECT_GT(summary->samples_delivered, 0u);
  EXPECT_EQ(summary->samples_delivered + summary->samples_rejected,
            summary->engine.samples_total());
  EXPECT_EQ(summary->samples_undelivered, 0u);
}

TEST_F(PipelineTest, FullSinkPausesFetching) {
  // The sink takes nothing until the gate opens. With bounded queues the
  // source must stop being asked for ticks long before its input ends.
  SetGate(false);
  PipelineOptions options = Options(2, 2);
  options.batch_max_samples = 10;
  auto source = std::make_unique<ScriptedSource>(4, 5, 100'000);
  ScriptedSource* source_view = source.get();

  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
      options, std::move(source), std::make_unique<CollectingSink>(&sink_));
  ASSERT_TRUE(pipeline.ok());
  absl::StatusOr<PipelineSummary> summary;
  std::thread runner([&] { summary = (*pipeline)->Run(); });

  // Wait until planning stalls: no new tick for 500 ms.
  uint64_t last = 0;
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const uint64_t now = source_view->ticks_planned();
    if (now == last) break;
    last = now;
  }
  // Each tick fetches 4 x 5 x 10 = 200 observations; the queues hold a few
  // hundred at most, so a handful of ticks fill them.
  EXPECT_LT(source_view->ticks_planned(), 100u);

  (*pipeline)->RequestStop();
  SetGate(true);
  runner.join();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->stopped_by_request);
  EXPECT_EQ(summary->samples_delivered, summary->engine.samples_total());
  EXPECT_EQ(summary->samples_undelivered, 0u);
}

TEST_F(PipelineTest, StopBeforeRunReturnsAtOnce) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
      Options(2, 2), std::make_unique<ScriptedSource>(2, 2, 1'000'000),
      std::make_unique<CollectingSink>(&sink_));
  ASSERT_TRUE(pipeline.ok());
  (*pipeline)->RequestStop();
  absl::StatusOr<PipelineSummary> summary = (*pipeline)->Run();
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->ticks, 0u);
  EXPECT_TRUE(summary->stopped_by_request);
}

TEST_F(PipelineTest, OutageAtShutdownCountsUndelivered) {
  sink_.always_unavailable.store(true);
  PipelineOptions options = Options(2, 2);
  options.shutdown_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
      options, std::make_unique<ScriptedSource>(3, 3, 1'000'000),
      std::make_unique<CollectingSink>(&sink_));
  ASSERT_TRUE(pipeline.ok());
  absl::StatusOr<PipelineSummary> summary;
  std::thread runner([&] { summary = (*pipeline)->Run(); });

  // Stop once the sink has been tried a few times.
  while (sink_.pushes.load() < 5) std::this_thread::yield();
  (*pipeline)->RequestStop();
  runner.join();

  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_GT(summary->push_retries, 0u);
  EXPECT_EQ(summary->samples_delivered, 0u);
  EXPECT_GT(summary->samples_undelivered, 0u);
  EXPECT_EQ(summary->samples_undelivered, summary->engine.samples_total());
}

// Serves one old bucket to partition 0 at tick 0 and to partition 1 at
// tick 1, as a backfill chunk spread over two ticks does, then partition 0
// again at tick 2.
class SplitChunkSource : public Source {
 public:
  std::string_view name() const override { return "split-chunk"; }

  std::optional<TickPlan> NextTick(std::stop_token) override {
    if (next_tick_ == 3) return std::nullopt;
    TickPlan plan;
    plan.tick = next_tick_;
    plan.now = absl::FromUnixMillis(kStartMs + 60 * kMinuteMs + next_tick_ * 30'000);
    FetchTask task;
    task.lane = Lane::kBackfill;
    task.partition = next_tick_ == 1 ? 1 : 0;
    task.now = plan.now;
    plan.tasks.push_back(task);
    ++next_tick_;
    return plan;
  }

  absl::Status Fetch(const FetchTask& task, ObservationBatch* out) override {
    // An hour old: past the 15-minute TTL, so each tick's expiry closes it.
    out->Add(ScriptedSource::Key(task.partition, 0), kStartMs,
             100u + task.partition);
    return absl::OkStatus();
  }

 private:
  uint64_t next_tick_ = 0;
};

TEST_F(PipelineTest, BucketClosedPerPartition) {
  for (int shards : {1, 2}) {
    {
      std::lock_guard<std::mutex> lock(sink_.mutex);
      sink_.samples.clear();
    }
    absl::StatusOr<PipelineSummary> summary =
        RunPipeline(Options(shards, 1), std::make_unique<SplitChunkSource>());
    ASSERT_TRUE(summary.ok()) << summary.status();
    // Partition 1's first observation opens a fresh window even though
    // partition 0 closed the same bucket a tick earlier. Partition 0's second
    // observation of its closed bucket is late.
    const std::vector<Sample> samples = Collected();
    ASSERT_EQ(samples.size(), 2u) << "shards=" << shards;
    EXPECT_EQ(summary->engine.late_dropped, 1u);
    EXPECT_EQ(summary->engine.samples_forced, 2u);
  }
}

TEST_F(PipelineTest, SnapshotDuringRunMatchesSummaryAtEnd) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
      Options(3, 2), std::make_unique<ScriptedSource>(4, 5, 40),
      std::make_unique<CollectingSink>(&sink_));
  ASSERT_TRUE(pipeline.ok());

  // Read snapshots concurrently with the run (ThreadSanitizer checks the
  // hand-offs), and check that counters never go backwards.
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    uint64_t last_delivered = 0;
    while (!done.load()) {
      const PipelineSnapshot snapshot = (*pipeline)->Snapshot();
      EXPECT_GE(snapshot.sink.delivered, last_delivered);
      last_delivered = snapshot.sink.delivered;
      std::this_thread::yield();
    }
  });
  absl::StatusOr<PipelineSummary> summary = (*pipeline)->Run();
  done.store(true);
  scraper.join();
  ASSERT_TRUE(summary.ok()) << summary.status();

  const PipelineSnapshot snapshot = (*pipeline)->Snapshot();
  EngineStats engine;
  for (const ShardSnapshot& shard : snapshot.shards) engine.Add(shard.engine);
  EXPECT_EQ(engine.observations, summary->engine.observations);
  EXPECT_EQ(engine.samples_total(), summary->engine.samples_total());
  EXPECT_EQ(snapshot.sink.delivered, summary->samples_delivered);
  EXPECT_EQ(snapshot.ticks_started, summary->ticks);
  EXPECT_EQ(snapshot.lanes[0].fetches_ok, summary->fetches_ok);
  EXPECT_TRUE(snapshot.first_fetch_done);
  EXPECT_TRUE(snapshot.sink_ready);
  EXPECT_TRUE(snapshot.stopping);
}

// Stops the pipeline at many points of its life under a watchdog: a lost
// wakeup in any hand-off hangs a round, and the watchdog turns that into a
// failure instead of a stuck CI job.
TEST_F(PipelineTest, StopAtAnyPointNeverHangsOrLoses) {
  constexpr int kRounds = 150;
  std::atomic<int> round_done{-1};
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    int last = -2;
    auto last_change = std::chrono::steady_clock::now();
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const int now = round_done.load();
      if (now != last) {
        last = now;
        last_change = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_change >
                 std::chrono::seconds(120)) {
        ADD_FAILURE() << "round " << now + 1 << " hung for 120 s";
        std::abort();
      }
    }
  });

  for (int round = 0; round < kRounds; ++round) {
    {
      std::lock_guard<std::mutex> lock(sink_.mutex);
      sink_.samples.clear();
    }
    PipelineOptions options = Options(1 + round % 4, 1 + round % 3);
    options.shard_queue_capacity = 1 + round % 8;
    options.sink_queue_capacity = 1 + round % 5;
    options.batch_max_samples = 1 + round % 7;
    auto source = std::make_unique<ScriptedSource>(3, 2, 1'000'000);
    ScriptedSource* source_view = source.get();
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(
        options, std::move(source), std::make_unique<CollectingSink>(&sink_));
    ASSERT_TRUE(pipeline.ok());

    absl::StatusOr<PipelineSummary> summary;
    std::thread runner([&] { summary = (*pipeline)->Run(); });
    const uint64_t stop_after = round % 5;  // fetches before the stop
    while (source_view->fetches() < stop_after) std::this_thread::yield();
    (*pipeline)->RequestStop();
    runner.join();

    ASSERT_TRUE(summary.ok()) << summary.status();
    ASSERT_EQ(summary->samples_delivered, summary->engine.samples_total())
        << "round " << round;
    ASSERT_EQ(Collected().size(), summary->engine.samples_total())
        << "round " << round;
    round_done.store(round);
  }
  finished.store(true);
  watchdog.join();
}

TEST(BatchPoolTest, TakeReusesAGivenBatchEmptied) {
  BatchPool pool(4);
  std::unique_ptr<ObservationBatch> batch = pool.Take();
  batch->Add(ScriptedSource::Key(0, 0), kStartMs, 1);
  const ObservationBatch* const returned_batch = batch.get();
  pool.Give(std::move(batch));

  std::unique_ptr<ObservationBatch> reused = pool.Take();
  EXPECT_EQ(reused.get(), returned_batch);
  EXPECT_TRUE(reused->empty());
}

TEST(BatchPoolTest, KeepsAtMostCapacityIdle) {
  BatchPool pool(2);
  std::set<const ObservationBatch*> pooled_batches;
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<ObservationBatch> batch =
        std::make_unique<ObservationBatch>();
    if (i < 2) pooled_batches.insert(batch.get());
    pool.Give(std::move(batch));  // the third one is freed
  }

  std::unique_ptr<ObservationBatch> first = pool.Take();
  std::unique_ptr<ObservationBatch> second = pool.Take();
  EXPECT_EQ(pooled_batches.count(first.get()), 1u);
  EXPECT_EQ(pooled_batches.count(second.get()), 1u);
  EXPECT_NE(first.get(), second.get());
}

TEST(BatchPoolTest, ThreadsTakeAndGiveConcurrently) {
  BatchPool pool(8);
  const SeriesKey key = ScriptedSource::Key(0, 0);
  std::atomic<uint64_t> nonempty_takes{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&pool, &key, &nonempty_takes, t] {
        for (int i = 0; i < 2000; ++i) {
          std::unique_ptr<ObservationBatch> batch = pool.Take();
          if (!batch->empty()) nonempty_takes.fetch_add(1);
          batch->Add(key, kStartMs, static_cast<uint64_t>(t * 10000 + i));
          pool.Give(std::move(batch));
        }
      });
    }
  }
  EXPECT_EQ(nonempty_takes.load(), 0u);
}

}  // namespace
}  // namespace converge

#include "converge/engine.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "converge/time_util.h"
#include "core/series_encoder.h"
#include "core/series_index.h"

namespace converge {
namespace {

constexpr int64_t kMinuteMs = 60'000;
// 2026-06-24T19:00:00Z, a bucket start.
constexpr int64_t kBucket = 1'782'327'600'000;

SeriesKey Key(const std::string& zone, const std::string& name = "requests") {
  absl::StatusOr<SeriesKey> key = SeriesKey::Make(name, {{"zone", zone}});
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

absl::Time At(int64_t unix_ms) { return absl::FromUnixMillis(unix_ms); }

class EngineTest : public ::testing::Test {
 protected:
  void Start(int threshold, absl::Duration ttl = absl::Minutes(15),
             absl::Duration lookback = absl::Minutes(10)) {
    EngineOptions options;
    options.threshold = threshold;
    options.window_ttl = ttl;
    options.lookback = lookback;
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  // Ingests one observation and returns the values it pushed.
  std::vector<uint64_t> Observe(const SeriesKey& key, int64_t bucket_ms,
                                uint64_t value) {
    std::vector<Sample> samples;
    engine_->Ingest(Observation{key, bucket_ms, value}, &samples);
    return Values(samples);
  }

  // Ingests a sequence for one tracker and returns everything it pushed.
  std::vector<uint64_t> ObserveAll(const SeriesKey& key, int64_t bucket_ms,
                                   const std::vector<uint64_t>& values) {
    std::vector<uint64_t> pushed;
    for (uint64_t value : values) {
      for (uint64_t sample : Observe(key, bucket_ms, value)) {
        pushed.push_back(sample);
      }
    }
    return pushed;
  }

  std::vector<Sample> Expire(int64_t now_ms) {
    std::vector<Sample> samples;
    engine_->Expire(At(now_ms), &samples);
    return samples;
  }

  std::vector<Sample> Flush() {
    std::vector<Sample> samples;
    engine_->Flush(&samples);
    return samples;
  }

  static std::vector<uint64_t> Values(const std::vector<Sample>& samples) {
    std::vector<uint64_t> values;
    for (const Sample& sample : samples) values.push_back(sample.value);
    return values;
  }

  std::unique_ptr<Engine> engine_;
};

using ValueList = std::vector<uint64_t>;

// A sequence that settles at 5, changes to 7, and settles again.
const ValueList kSettleChangeSettle = {5, 5, 5, 5, 7, 7, 7, 7};

TEST_F(EngineTest, ThresholdOnePushesEveryNewValue) {
  Start(1);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, kSettleChangeSettle),
            (ValueList{5, 7}));
  EXPECT_EQ(engine_->stats().samples_stable, 2u);
  EXPECT_EQ(engine_->stats().post_stabilization_updates, 1u);
}

TEST_F(EngineTest, ThresholdTwoPushesAfterTwoEqualValues) {
  Start(2);
  EXPECT_EQ(Observe(Key("a"), kBucket, 5), ValueList{});
  EXPECT_EQ(Observe(Key("a"), kBucket, 5), ValueList{5});
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {5, 5, 7}), ValueList{});
  EXPECT_EQ(Observe(Key("a"), kBucket, 7), ValueList{7});
}

TEST_F(EngineTest, ThresholdThreePushesSettleChangeSettle) {
  Start(3);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, kSettleChangeSettle),
            (ValueList{5, 7}));
  EXPECT_EQ(engine_->stats().samples_stable, 2u);
  EXPECT_EQ(engine_->stats().post_stabilization_updates, 1u);
  EXPECT_EQ(engine_->stats().down_revisions, 0u);
}

TEST_F(EngineTest, ThresholdThreeIgnoresRunsThatDoNotSettle) {
  Start(3);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {1, 1, 2, 2, 3, 3}), ValueList{});
  EXPECT_EQ(engine_->stats().post_stabilization_updates, 0u);
}

TEST_F(EngineTest, RepeatsOfPushedValueEmitNothing) {
  Start(2);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {4, 4, 4, 4, 4, 4}), ValueList{4});
}

TEST_F(EngineTest, ReturnToPushedValueIsNotPushedAgain) {
  Start(2);
  // 4 settles and is pushed; 9 appears once; 4 settles again. The receiver
  // already holds 4, so nothing new goes out.
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {4, 4, 9, 4, 4}), ValueList{4});
  EXPECT_EQ(engine_->stats().post_stabilization_updates, 2u);
}

TEST_F(EngineTest, LowerCorrectionCountsDownRevision) {
  Start(2);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {10, 10, 8, 8}), (ValueList{10, 8}));
  EXPECT_EQ(engine_->stats().post_stabilization_updates, 1u);
  EXPECT_EQ(engine_->stats().down_revisions, 1u);
}

TEST_F(EngineTest, ExpireForcesUnsettledSiblingOnly) {
  Start(3);
  // Zone a settles and is pushed; zone b in the same bucket never settles.
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {3, 3, 3}), ValueList{3});
  EXPECT_EQ(ObserveAll(Key("b"), kBucket, {1, 2}), ValueList{});

  std::vector<Sample> forced = Expire(kBucket + 15 * kMinuteMs);
  ASSERT_EQ(forced.size(), 1u);
  EXPECT_EQ(forced[0].series, Key("b"));
  EXPECT_EQ(forced[0].value, 2u);
  EXPECT_EQ(forced[0].timestamp_ms, kBucket);
  EXPECT_EQ(forced[0].cause, SampleCause::kForced);
  EXPECT_EQ(engine_->stats().samples_forced, 1u);
  EXPECT_EQ(engine_->stats().open_windows, 0u);
  EXPECT_EQ(engine_->stats().trackers, 0u);
  EXPECT_EQ(engine_->stats().series, 0u);
}

TEST_F(EngineTest, ExpireForcesValueChangedSincePush) {
  Start(2);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {6, 6, 7}), ValueList{6});
  EXPECT_EQ(Values(Expire(kBucket + 15 * kMinuteMs)), ValueList{7});
}

TEST_F(EngineTest, ExpireKeepsWindowsYoungerThanTtl) {
  Start(3);
  Observe(Key("a"), kBucket, 1);
  EXPECT_TRUE(Expire(kBucket + 15 * kMinuteMs - 1).empty());
  EXPECT_EQ(engine_->stats().open_windows, 1u);
  EXPECT_EQ(Expire(kBucket + 15 * kMinuteMs).size(), 1u);
}

TEST_F(EngineTest, OlderNowClosesNothingNew) {
  Start(3);
  Observe(Key("a"), kBucket, 1);
  EXPECT_TRUE(Expire(kBucket + 20 * kMinuteMs - 60 * kMinuteMs).empty());
  EXPECT_EQ(engine_->stats().open_windows, 1u);
}

TEST_F(EngineTest, LateObservationIsDroppedAndCounted) {
  Start(1);
  EXPECT_EQ(Observe(Key("a"), kBucket, 5), ValueList{5});
  Expire(kBucket + 15 * kMinuteMs);

  EXPECT_EQ(Observe(Key("a"), kBucket, 6), ValueList{});
  EXPECT_EQ(Observe(Key("new"), kBucket, 6), ValueList{});
  EXPECT_EQ(engine_->stats().late_dropped, 2u);
  EXPECT_EQ(engine_->stats().open_windows, 0u);
  EXPECT_TRUE(Flush().empty());
}

TEST_F(EngineTest, NotedBucketClosesWithoutTrackers) {
  Start(1);
  engine_->NoteBucket(kBucket);
  EXPECT_EQ(engine_->stats().open_windows, 1u);
  Expire(kBucket + 15 * kMinuteMs);
  EXPECT_EQ(Observe(Key("a"), kBucket, 6), ValueList{});
  EXPECT_EQ(engine_->stats().late_dropped, 1u);
}

TEST_F(EngineTest, BackfillBucketOlderThanTtlOpensFreshWindow) {
  Start(3);
  // `now` is far past this bucket's TTL, but no window for it was ever open.
  Expire(kBucket + 120 * kMinuteMs);
  const int64_t old_bucket = kBucket + 30 * kMinuteMs;
  EXPECT_EQ(Observe(Key("a"), old_bucket, 42), ValueList{});
  EXPECT_EQ(engine_->stats().late_dropped, 0u);
  EXPECT_EQ(engine_->stats().open_windows, 1u);

  std::vector<Sample> settled = Expire(kBucket + 120 * kMinuteMs);
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0].value, 42u);
  EXPECT_EQ(settled[0].cause, SampleCause::kForced);
}

TEST_F(EngineTest, FlushEmitsEveryUnpushedValue) {
  Start(3);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {1, 1, 1}), ValueList{1});
  Observe(Key("b"), kBucket, 2);
  Observe(Key("a"), kBucket + kMinuteMs, 3);

  std::vector<Sample> flushed = Flush();
  ASSERT_EQ(flushed.size(), 2u);
  for (const Sample& sample : flushed) {
    EXPECT_EQ(sample.cause, SampleCause::kFlushed);
  }
  EXPECT_EQ(engine_->stats().samples_flushed, 2u);
  EXPECT_EQ(engine_->stats().open_windows, 0u);
  EXPECT_EQ(engine_->stats().trackers, 0u);
}

TEST_F(EngineTest, LabelOrderMakesOneSeries) {
  Start(2);
  absl::StatusOr<SeriesKey> ab =
      SeriesKey::Make("requests", {{"zone", "a"}, {"status", "200"}});
  absl::StatusOr<SeriesKey> ba =
      SeriesKey::Make("requests", {{"status", "200"}, {"zone", "a"}});
  ASSERT_TRUE(ab.ok());
  ASSERT_TRUE(ba.ok());
  EXPECT_EQ(Observe(*ab, kBucket, 9), ValueList{});
  EXPECT_EQ(Observe(*ba, kBucket, 9), ValueList{9});
  EXPECT_EQ(engine_->stats().trackers, 1u);
}

TEST_F(EngineTest, TrackersAreIndependentPerBucket) {
  Start(2);
  EXPECT_EQ(Observe(Key("a"), kBucket, 1), ValueList{});
  EXPECT_EQ(Observe(Key("a"), kBucket + kMinuteMs, 1), ValueList{});
  EXPECT_EQ(Observe(Key("a"), kBucket, 1), ValueList{1});
  EXPECT_EQ(engine_->stats().trackers, 2u);
  EXPECT_EQ(engine_->stats().series, 1u);
}

TEST_F(EngineTest, SampleCarriesBucketTimestamp) {
  Start(1);
  std::vector<Sample> samples;
  engine_->Ingest(Observation{Key("a"), kBucket, 5}, &samples);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].timestamp_ms, kBucket);
  EXPECT_EQ(samples[0].series, Key("a"));
  EXPECT_EQ(samples[0].cause, SampleCause::kStable);
}

TEST_F(EngineTest, ReleasedSeriesIdIsReusedSafely) {
  Start(1);
  Observe(Key("a"), kBucket, 1);
  Expire(kBucket + 15 * kMinuteMs);
  // "b" reuses the id "a" had; "a" must not alias it.
  const int64_t next = kBucket + 16 * kMinuteMs;
  EXPECT_EQ(Observe(Key("b"), next, 2), ValueList{2});
  EXPECT_EQ(Observe(Key("a"), next, 3), ValueList{3});
  std::vector<Sample> samples;
  engine_->Ingest(Observation{Key("b"), next, 4}, &samples);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].series, Key("b"));
  EXPECT_EQ(engine_->stats().series, 2u);
}

TEST_F(EngineTest, KeyViewAndKeyAreOneSeries) {
  Start(2);
  const SeriesKey key = Key("a");
  std::vector<Sample> samples;
  engine_->Ingest(SeriesKeyView::Of(key), kBucket, 4, &samples);
  engine_->Ingest(key, kBucket, 4, &samples);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].series, key);
  EXPECT_EQ(engine_->stats().trackers, 1u);
}

TEST_F(EngineTest, KeyViewMayPointIntoTemporaryBuffer) {
  Start(3);
  std::vector<Sample> samples;
  {
    std::string bytes = Key("a").encoded();
    engine_->Ingest(SeriesKeyView{bytes, StableHash(bytes)}, kBucket, 8,
                    &samples);
    bytes.assign(bytes.size(), 'x');  // the engine must hold its own copy
  }
  std::vector<Sample> flushed = Flush();
  ASSERT_EQ(flushed.size(), 1u);
  EXPECT_EQ(flushed[0].series, Key("a"));
}

TEST_F(EngineTest, HandleIngestMatchesKeyIngest) {
  Start(3);
  const SeriesHandle handle = engine_->Prepare(Key("a"));
  std::vector<Sample> samples;
  engine_->Ingest(handle, kBucket, 5, &samples);
  engine_->Ingest(Key("a"), kBucket, 5, &samples);
  engine_->Ingest(handle, kBucket, 5, &samples);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].series, Key("a"));
  EXPECT_EQ(samples[0].value, 5u);
  EXPECT_EQ(engine_->stats().trackers, 1u);
  EXPECT_EQ(engine_->stats().observations, 3u);
}

TEST_F(EngineTest, PrepareTwiceReturnsSameHandle) {
  Start(1);
  const SeriesHandle first = engine_->Prepare(Key("a"));
  const SeriesHandle second = engine_->Prepare(Key("a"));
  EXPECT_EQ(first.id, second.id);
  EXPECT_NE(engine_->Prepare(Key("b")).id, first.id);
}

TEST_F(EngineTest, PinnedSeriesKeepsHandleAcrossExpire) {
  Start(1);
  const SeriesHandle handle = engine_->Prepare(Key("a"));
  std::vector<Sample> samples;
  engine_->Ingest(handle, kBucket, 1, &samples);
  EXPECT_EQ(engine_->stats().series, 1u);
  Expire(kBucket + 15 * kMinuteMs);
  EXPECT_EQ(engine_->stats().series, 0u);

  // Another series must not take the pinned series' id.
  EXPECT_EQ(Observe(Key("b"), kBucket + 16 * kMinuteMs, 2), ValueList{2});
  samples.clear();
  engine_->Ingest(handle, kBucket + 16 * kMinuteMs, 3, &samples);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].series, Key("a"));
  engine_->Release(handle);
}

TEST_F(EngineTest, ReleasedSeriesIsDroppedOnceWindowsClose) {
  Start(1);
  const SeriesHandle handle = engine_->Prepare(Key("a"));
  std::vector<Sample> samples;
  engine_->Ingest(handle, kBucket, 1, &samples);
  engine_->Release(handle);
  EXPECT_EQ(engine_->stats().series, 1u);  // its tracker is still open
  Expire(kBucket + 15 * kMinuteMs);
  EXPECT_EQ(engine_->stats().series, 0u);

  // The freed id is reused by the next new series without aliasing "a".
  EXPECT_EQ(Observe(Key("b"), kBucket + 16 * kMinuteMs, 2), ValueList{2});
  const SeriesHandle again = engine_->Prepare(Key("a"));
  samples.clear();
  engine_->Ingest(again, kBucket + 16 * kMinuteMs, 3, &samples);
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].series, Key("a"));
}

TEST_F(EngineTest, BatchMatchesOneCallPerObservation) {
  Start(2);
  std::vector<Observation> batch;
  for (int i = 0; i < 40; ++i) {
    batch.push_back(Observation{Key("z" + std::to_string(i % 7)),
                                kBucket + (i % 3) * kMinuteMs,
                                static_cast<uint64_t>(i % 5 == 0 ? 1 : 2)});
  }
  std::vector<Sample> one_by_one;
  for (const Observation& observation : batch) {
    engine_->Ingest(observation, &one_by_one);
  }
  const EngineStats single = engine_->stats();

  Start(2);
  std::vector<Sample> batched;
  engine_->IngestBatch(batch, &batched);
  ASSERT_EQ(batched.size(), one_by_one.size());
  for (size_t i = 0; i < batched.size(); ++i) {
    EXPECT_EQ(batched[i].series, one_by_one[i].series) << i;
    EXPECT_EQ(batched[i].timestamp_ms, one_by_one[i].timestamp_ms) << i;
    EXPECT_EQ(batched[i].value, one_by_one[i].value) << i;
  }
  EXPECT_EQ(engine_->stats().trackers, single.trackers);
  EXPECT_EQ(engine_->stats().post_stabilization_updates,
            single.post_stabilization_updates);
}

TEST_F(EngineTest, BatchDropsLateObservations) {
  Start(1);
  engine_->NoteBucket(kBucket);
  Expire(kBucket + 15 * kMinuteMs);
  const SeriesKey key = Key("a");
  const std::vector<ObservationView> batch = {
      {SeriesKeyView::Of(key), kBucket, 1},
      {SeriesKeyView::Of(key), kBucket + 16 * kMinuteMs, 2}};
  std::vector<Sample> samples;
  engine_->IngestBatch(batch, &samples);
  EXPECT_EQ(Values(samples), ValueList{2});
  EXPECT_EQ(engine_->stats().late_dropped, 1u);
}

TEST_F(EngineTest, SparseSeriesIdsShareWindow) {
  Start(1);
  // Thousands of series in one bucket, then a window that only the last of
  // them reaches: its tracker lives far into the id space.
  for (int i = 0; i < 3000; ++i) {
    Observe(Key("z" + std::to_string(i)), kBucket, 1);
  }
  EXPECT_EQ(Observe(Key("z2999"), kBucket + kMinuteMs, 7), ValueList{7});
  EXPECT_EQ(engine_->stats().trackers, 3001u);
  std::vector<Sample> flushed = Flush();
  EXPECT_TRUE(flushed.empty());
  EXPECT_EQ(engine_->stats().trackers, 0u);
  EXPECT_EQ(engine_->stats().series, 0u);
}

// A direct transcription of the stabilization, expiry and flush rules, used
// to check the engine on random operation sequences.
class ReferenceEngine {
 public:
  explicit ReferenceEngine(int threshold, int64_t ttl_ms)
      : threshold_(threshold), ttl_ms_(ttl_ms) {}

  void Ingest(const SeriesKey& key, int64_t bucket, uint64_t value,
              std::vector<Sample>* out) {
    ++stats_.observations;
    if (closed_.contains(bucket)) {
      ++stats_.late_dropped;
      return;
    }
    auto& window = windows_[bucket];
    auto [it, inserted] = window.try_emplace(key.encoded());
    State& state = it->second;
    if (inserted) {
      keys_[key.encoded()] = key;
      state.latest = value;
    } else if (value != state.latest) {
      if (state.stabilized) {
        ++stats_.post_stabilization_updates;
        if (state.has_pushed && value < state.pushed) ++stats_.down_revisions;
      }
      state.latest = value;
      state.run = 0;
    }
    if (state.run >= threshold_) return;
    if (++state.run < threshold_) return;
    state.stabilized = true;
    if (state.has_pushed && state.pushed == state.latest) return;
    state.pushed = state.latest;
    state.has_pushed = true;
    ++stats_.samples_stable;
    out->push_back(Sample{key, bucket, value, SampleCause::kStable});
  }

  void NoteBucket(int64_t bucket) {
    if (!closed_.contains(bucket)) windows_[bucket];
  }

  void Expire(int64_t now_ms, std::vector<Sample>* out) {
    while (!windows_.empty() && windows_.begin()->first <= now_ms - ttl_ms_) {
      Close(windows_.begin(), SampleCause::kForced, out);
    }
  }

  void Flush(std::vector<Sample>* out) {
    while (!windows_.empty()) {
      Close(windows_.begin(), SampleCause::kFlushed, out);
    }
  }

  EngineStats stats() const {
    EngineStats stats = stats_;
    stats.open_windows = windows_.size();
    std::set<std::string> series;
    for (const auto& [bucket, window] : windows_) {
      stats.trackers += window.size();
      for (const auto& [encoded, state] : window) series.insert(encoded);
    }
    stats.series = series.size();
    return stats;
  }

 private:
  struct State {
    uint64_t latest = 0;
    uint64_t pushed = 0;
    int run = 0;
    bool has_pushed = false;
    bool stabilized = false;
  };
  using Window = std::map<std::string, State>;

  void Close(std::map<int64_t, Window>::iterator it, SampleCause cause,
             std::vector<Sample>* out) {
    for (const auto& [encoded, state] : it->second) {
      if (state.has_pushed && state.pushed == state.latest) continue;
      (cause == SampleCause::kForced ? stats_.samples_forced
                                     : stats_.samples_flushed)++;
      out->push_back(Sample{keys_[encoded], it->first, state.latest, cause});
    }
    closed_.insert(it->first);
    windows_.erase(it);
  }

  const int threshold_;
  const int64_t ttl_ms_;
  std::map<int64_t, Window> windows_;
  std::set<int64_t> closed_;
  std::map<std::string, SeriesKey> keys_;
  EngineStats stats_;
};

using SampleTuple = std::tuple<std::string, int64_t, uint64_t, SampleCause>;

std::vector<SampleTuple> Sorted(const std::vector<Sample>& samples) {
  std::vector<SampleTuple> tuples;
  for (const Sample& sample : samples) {
    tuples.emplace_back(sample.series.encoded(), sample.timestamp_ms,
                        sample.value, sample.cause);
  }
  std::sort(tuples.begin(), tuples.end());
  return tuples;
}

void ExpectSameStats(const EngineStats& actual, const EngineStats& expected,
                     const std::string& where) {
  EXPECT_EQ(actual.open_windows, expected.open_windows) << where;
  EXPECT_EQ(actual.trackers, expected.trackers) << where;
  EXPECT_EQ(actual.series, expected.series) << where;
  EXPECT_EQ(actual.observations, expected.observations) << where;
  EXPECT_EQ(actual.samples_stable, expected.samples_stable) << where;
  EXPECT_EQ(actual.samples_forced, expected.samples_forced) << where;
  EXPECT_EQ(actual.samples_flushed, expected.samples_flushed) << where;
  EXPECT_EQ(actual.post_stabilization_updates,
            expected.post_stabilization_updates)
      << where;
  EXPECT_EQ(actual.down_revisions, expected.down_revisions) << where;
  EXPECT_EQ(actual.late_dropped, expected.late_dropped) << where;
}

// Random ingests over churning series and buckets, expiries with a `now`
// that mostly advances and sometimes steps back, noted buckets and a final
// flush: the engine must emit the same samples and keep the same stats as
// the reference after every step.
TEST(EngineModelTest, RandomOperationsMatchReference) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    std::mt19937_64 random(seed);
    const int threshold = 1 + static_cast<int>(seed % 4);
    EngineOptions options;
    options.threshold = threshold;
    absl::StatusOr<std::unique_ptr<Engine>> created = Engine::Create(options);
    ASSERT_TRUE(created.ok());
    Engine& engine = **created;
    ReferenceEngine reference(threshold,
                              absl::ToInt64Milliseconds(options.window_ttl));

    std::vector<SeriesKey> keys;
    for (int i = 0; i < 600; ++i) keys.push_back(Key("z" + std::to_string(i)));
    std::vector<SeriesHandle> handles;
    std::vector<size_t> handle_keys;

    int64_t now = kBucket;
    for (int step = 0; step < 4000; ++step) {
      const std::string where =
          "seed " + std::to_string(seed) + " step " + std::to_string(step);
      const int op = static_cast<int>(random() % 100);
      std::vector<Sample> actual;
      std::vector<Sample> expected;

      if (op < 80) {
        // A batch of observations around `now`, some older than the TTL.
        // The set of series in use drifts with time, so ids get released
        // and reused.
        const size_t base = static_cast<size_t>((now - kBucket) / kMinuteMs);
        std::vector<Observation> batch;
        const int count = 1 + static_cast<int>(random() % 64);
        for (int i = 0; i < count; ++i) {
          const size_t key = (base * 7 + random() % 120) % keys.size();
          const int64_t bucket =
              now - static_cast<int64_t>(random() % 20) * kMinuteMs;
          batch.push_back(
              Observation{keys[key], bucket, 1 + random() % 3});
        }
        switch (random() % 4) {
          case 0:
            engine.IngestBatch(batch, &actual);
            break;
          case 1: {
            std::vector<ObservationView> views;
            for (const Observation& o : batch) {
              views.push_back(ObservationView{SeriesKeyView::Of(o.series),
                                              o.bucket_ms, o.value});
            }
            engine.IngestBatch(views, &actual);
            break;
          }
          case 2: {
            // Through handles, prepared now and released at once: a
            // released handle's series must stay correct while its
            // trackers are open.
            for (const Observation& o : batch) {
              const SeriesHandle handle = engine.Prepare(o.series);
              engine.Ingest(handle, o.bucket_ms, o.value, &actual);
              engine.Release(handle);
            }
            break;
          }
          default:
            for (const Observation& o : batch) engine.Ingest(o, &actual);
            break;
        }
        for (const Observation& o : batch) {
          reference.Ingest(o.series, o.bucket_ms, o.value, &expected);
        }
        // Ingest emits in observation order.
        ASSERT_EQ(actual.size(), expected.size()) << where;
        for (size_t i = 0; i < actual.size(); ++i) {
          EXPECT_EQ(actual[i].series, expected[i].series) << where;
          EXPECT_EQ(actual[i].timestamp_ms, expected[i].timestamp_ms)
              << where;
          EXPECT_EQ(actual[i].value, expected[i].value) << where;
        }
      } else if (op < 95) {
        // Mostly forward by half a minute; sometimes back, like a replay.
        now += random() % 5 == 0 ? -10 * kMinuteMs : kMinuteMs / 2;
        engine.Expire(At(now), &actual);
        reference.Expire(now, &expected);
        EXPECT_EQ(Sorted(actual), Sorted(expected)) << where;
      } else {
        const int64_t bucket =
            now + static_cast<int64_t>(random() % 3) * kMinuteMs;
        engine.NoteBucket(bucket);
        reference.NoteBucket(bucket);
      }
      ExpectSameStats(engine.stats(), reference.stats(), where);
      if (::testing::Test::HasFailure()) return;
    }

    std::vector<Sample> actual;
    std::vector<Sample> expected;
    engine.Flush(&actual);
    reference.Flush(&expected);
    EXPECT_EQ(Sorted(actual), Sorted(expected)) << "seed " << seed;
    ExpectSameStats(engine.stats(), reference.stats(),
                    "flush, seed " + std::to_string(seed));
  }
}

// Keys of the index tests live in `keys_` by id, and the test chooses the
// hashes to force collisions.
class SeriesIndexTest : public ::testing::Test {
 protected:
  auto BytesOf() const {
    return [this](SeriesId id) -> std::string_view { return keys_[id]; };
  }
  auto HashOf() const {
    return [this](SeriesId id) { return hashes_[id]; };
  }

  SeriesId Find(uint64_t hash, const std::string& key) const {
    return index_.Find(hash, key, BytesOf());
  }
  void Insert(uint64_t hash, SeriesId id) {
    index_.Insert(hash, id, keys_[id], HashOf());
  }
  void Erase(uint64_t hash, SeriesId id) { index_.Erase(hash, id, HashOf()); }

  // Adds a key slot, repointing the index when the vector moves its keys,
  // as the engine does.
  SeriesId AddKeySlot() {
    const std::string* before = keys_.data();
    keys_.emplace_back();
    hashes_.emplace_back();
    if (keys_.data() != before) index_.UpdateKeyBytes(BytesOf());
    return static_cast<SeriesId>(keys_.size() - 1);
  }


  SeriesIndex index_;
  std::vector<std::string> keys_;
  std::vector<uint64_t> hashes_;
};

TEST_F(SeriesIndexTest, EqualHashesStayDistinct) {
  for (const char* key : {"a", "b", "c"}) {
    const SeriesId id = AddKeySlot();
    keys_[id] = key;
    hashes_[id] = 42;
    Insert(42, id);
  }
  EXPECT_EQ(Find(42, "a"), 0u);
  EXPECT_EQ(Find(42, "b"), 1u);
  EXPECT_EQ(Find(42, "c"), 2u);
  EXPECT_EQ(Find(42, "d"), SeriesIndex::kNoId);

  Erase(42, 1);
  EXPECT_EQ(Find(42, "a"), 0u);
  EXPECT_EQ(Find(42, "b"), SeriesIndex::kNoId);
  EXPECT_EQ(Find(42, "c"), 2u);
}

TEST_F(SeriesIndexTest, RandomInsertEraseMatchesMap) {
  std::mt19937_64 random(7);
  std::unordered_map<std::string, SeriesId> expected;
  std::vector<SeriesId> free_ids;
  for (int step = 0; step < 200'000; ++step) {
    // Few distinct hashes, and some with equal high halves, so that probe
    // runs are long and deletions shift entries across them.
    const uint64_t n = random() % 5000;
    const std::string key = std::to_string(n);
    const uint64_t hash = (n % 97) * 0x9e3779b97f4a7c15ULL + (n % 3);
    auto it = expected.find(key);
    if (it == expected.end()) {
      SeriesId id;
      if (!free_ids.empty()) {
        id = free_ids.back();
        free_ids.pop_back();
      } else {
        id = AddKeySlot();
      }
      keys_[id] = key;
      hashes_[id] = hash;
      ASSERT_EQ(Find(hash, key), SeriesIndex::kNoId) << step;
      Insert(hash, id);
      expected[key] = id;
    } else if (random() % 2 == 0) {
      Erase(hash, it->second);
      free_ids.push_back(it->second);
      keys_[it->second].clear();
      expected.erase(it);
      ASSERT_EQ(Find(hash, key), SeriesIndex::kNoId) << step;
    } else {
      ASSERT_EQ(Find(hash, key), it->second) << step;
    }
  }
  EXPECT_EQ(index_.size(), expected.size());
  for (const auto& [key, id] : expected) {
    EXPECT_EQ(Find(hashes_[id], key), id) << key;
  }
}

TEST_F(SeriesIndexTest, KeysLongerThanSlotSizeField) {
  const std::string long_a(70'000, 'a');
  std::string long_b = long_a;
  long_b.back() = 'b';
  for (const std::string& key : {long_a, long_b}) {
    const SeriesId id = AddKeySlot();
    keys_[id] = key;
    hashes_[id] = 9;
    Insert(9, id);
  }
  EXPECT_EQ(Find(9, long_a), 0u);
  EXPECT_EQ(Find(9, long_b), 1u);
  EXPECT_EQ(Find(9, long_a.substr(1)), SeriesIndex::kNoId);
}

TEST_F(EngineTest, LongKeyIsOneSeries) {
  Start(2);
  const SeriesKey key = Key(std::string(70'000, 'z'));
  EXPECT_EQ(Observe(key, kBucket, 3), ValueList{});
  EXPECT_EQ(Observe(key, kBucket, 3), ValueList{3});
  EXPECT_EQ(engine_->stats().trackers, 1u);
}

TEST(SeriesEncoderTest, MatchesSeriesKeyBytesAndHash) {
  SeriesEncoder encoder;
  const std::string long_value(300, 'v');  // a two-byte length prefix
  const std::vector<std::vector<SeriesEncoder::LabelView>> cases = {
      {},
      {{"zone", "a"}},
      {{"zone", "a"}, {"status", "200"}},
      {{"status", "200"}, {"zone", "a"}},
      {{"b", ""}, {"a", long_value}, {"c", "x"}},
  };
  for (const auto& labels : cases) {
    std::vector<std::pair<std::string_view, std::string_view>> copy(
        labels.begin(), labels.end());
    const absl::StatusOr<SeriesKey> key =
        SeriesKey::FromViews("requests", copy);
    ASSERT_TRUE(key.ok());
    const absl::StatusOr<SeriesKeyView> view =
        encoder.Encode("requests", labels);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->encoded, key->encoded());
    EXPECT_EQ(view->hash, key->hash());
  }
}

TEST(SeriesEncoderTest, RejectsWhatSeriesKeyRejects) {
  SeriesEncoder encoder;
  const std::vector<SeriesEncoder::LabelView> empty_name = {{"", "x"}};
  const std::vector<SeriesEncoder::LabelView> repeated = {{"a", "1"},
                                                          {"a", "2"}};
  EXPECT_EQ(encoder.Encode("", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encoder.Encode("m", empty_name).status().code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status status = encoder.Encode("m", repeated).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("appears twice"), std::string::npos);
}

TEST(SeriesEncoderTest, ViewsStayValidUntilClear) {
  SeriesEncoder encoder;
  const std::string huge(100'000, 'h');  // larger than one block
  std::vector<std::string> values;
  for (int i = 0; i < 5000; ++i) values.push_back(std::to_string(i));
  values[2500] = huge;

  for (int round = 0; round < 2; ++round) {
    std::vector<SeriesKeyView> views;
    for (const std::string& value : values) {
      const SeriesEncoder::LabelView labels[] = {{"zone", value}};
      views.push_back(*encoder.Encode("requests", labels));
    }
    for (size_t i = 0; i < values.size(); ++i) {
      const absl::StatusOr<SeriesKey> key =
          SeriesKey::Make("requests", {{"zone", values[i]}});
      ASSERT_TRUE(key.ok());
      ASSERT_EQ(views[i].encoded, key->encoded()) << "round " << round;
    }
    encoder.Clear();
  }
}

TEST_F(EngineTest, RepushCarriesPreviousValue) {
  Start(1);
  std::vector<Sample> samples;
  engine_->Ingest(Observation{Key("a"), kBucket, 5}, &samples);
  engine_->Ingest(Observation{Key("a"), kBucket, 7}, &samples);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_FALSE(samples[0].repush);
  EXPECT_TRUE(samples[1].repush);
  EXPECT_EQ(samples[1].previous_value, 5u);
}

TEST_F(EngineTest, ForcedAfterPushIsRepush) {
  Start(2);
  EXPECT_EQ(ObserveAll(Key("a"), kBucket, {6, 6, 9}), ValueList{6});
  Observe(Key("b"), kBucket, 1);
  std::vector<Sample> forced = Expire(kBucket + 15 * kMinuteMs);
  ASSERT_EQ(forced.size(), 2u);
  for (const Sample& sample : forced) {
    if (sample.series == Key("a")) {
      EXPECT_TRUE(sample.repush);
      EXPECT_EQ(sample.previous_value, 6u);
    } else {
      EXPECT_FALSE(sample.repush);
    }
  }
}

TEST(EngineOptionsTest, TtlNotGreaterThanLookbackIsRejected) {
  EngineOptions options;
  options.window_ttl = absl::Minutes(10);
  options.lookback = absl::Minutes(10);
  absl::Status status = ValidateEngineOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("window_ttl"), std::string::npos);
  EXPECT_FALSE(Engine::Create(options).ok());

  options.window_ttl = absl::Minutes(5);
  EXPECT_FALSE(ValidateEngineOptions(options).ok());
}

TEST(EngineOptionsTest, ThresholdBelowOneIsRejected) {
  EngineOptions options;
  options.threshold = 0;
  absl::Status status = ValidateEngineOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("threshold"), std::string::npos);
}

TEST(EngineOptionsTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateEngineOptions(EngineOptions{}).ok());
}

// Bucket times with `Z` and with other offsets name the same instant, and the
// host's time zone never enters the result.
TEST(BucketTimeTest, OffsetsGiveSameMillisecondsUnderAnyTz) {
  const char* saved = std::getenv("TZ");
  const std::string saved_tz = saved == nullptr ? "" : saved;
  for (const char* tz : {"UTC", "America/Los_Angeles", "Asia/Kolkata",
                         "Pacific/Chatham"}) {
    setenv("TZ", tz, 1);
    tzset();
    for (const char* text :
         {"2026-06-24T19:00:00Z", "2026-06-24T12:00:00-07:00",
          "2026-06-25T00:30:00+05:30", "2026-06-24T19:00:00.000+00:00"}) {
      absl::StatusOr<int64_t> ms = ParseRfc3339Millis(text);
      ASSERT_TRUE(ms.ok()) << text << ": " << ms.status();
      EXPECT_EQ(*ms, kBucket) << text << " under TZ=" << tz;
    }
  }
  if (saved == nullptr) {
    unsetenv("TZ");
  } else {
    setenv("TZ", saved_tz.c_str(), 1);
  }
  tzset();
}

TEST(BucketTimeTest, TimeWithoutOffsetIsRejected) {
  EXPECT_FALSE(ParseRfc3339Millis("2026-06-24T19:00:00").ok());
  EXPECT_FALSE(ParseRfc3339Millis("yesterday").ok());
}

}  // namespace
}  // namespace converge

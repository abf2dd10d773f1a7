#include "converge/engine.h"

#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "converge/time_util.h"

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
  ASSERT_TRUE(ab.ok() && ba.ok());
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

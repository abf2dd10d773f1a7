#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "converge/sources.h"
#include "testing/fetch_all.h"

namespace converge {
namespace {

// 2026-06-24T19:00:00Z, a whole minute.
const absl::Time kStart = absl::FromUnixSeconds(1'782'327'600);

SimOptions BaseOptions() {
  SimOptions options;
  options.zones = 3;
  options.series_per_zone = 20;
  options.seed = 7;
  options.start = kStart;
  options.duration = absl::Hours(1);
  options.zones_per_query = 2;  // zone groups {0, 1} and {2}
  return options;
}

std::unique_ptr<Source> MakeSource(const SimOptions& options) {
  absl::StatusOr<std::unique_ptr<Source>> source = MakeSimSource(options);
  EXPECT_TRUE(source.ok()) << source.status();
  return source.ok() ? std::move(*source) : nullptr;
}

FetchTask Task(uint32_t partition, absl::Time range_start,
               absl::Time range_end, absl::Time now) {
  FetchTask task;
  task.lane = Lane::kLive;
  task.partition = partition;
  task.range = {range_start, range_end};
  task.now = now;
  return task;
}

FetchTask LiveTask(uint32_t partition, absl::Time now) {
  return Task(partition, now - absl::Minutes(10), now, now);
}

// The task for the single bucket starting at `bucket`, seen at `age`.
FetchTask BucketTask(uint32_t partition, absl::Time bucket,
                     absl::Duration age) {
  return Task(partition, bucket, bucket + absl::Minutes(1), bucket + age);
}

std::vector<Observation> Fetch(Source& source, const FetchTask& task) {
  std::vector<Observation> observations;
  const absl::Status status = harness::FetchAll(source, task, &observations);
  EXPECT_TRUE(status.ok()) << status;
  return observations;
}

// (series text, bucket_ms) -> value, for comparing fetches.
std::map<std::pair<std::string, int64_t>, uint64_t> ByKey(
    const std::vector<Observation>& observations) {
  std::map<std::pair<std::string, int64_t>, uint64_t> values;
  for (const Observation& observation : observations) {
    values[{observation.series.ToString(), observation.bucket_ms}] =
        observation.value;
  }
  return values;
}

void ExpectSame(const std::vector<Observation>& a,
                const std::vector<Observation>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].series, b[i].series) << "at " << i;
    EXPECT_EQ(a[i].bucket_ms, b[i].bucket_ms) << "at " << i;
    EXPECT_EQ(a[i].value, b[i].value) << "at " << i;
  }
}

// --- ValidateSimOptions -----------------------------------------------------

TEST(SimOptionsTest, BaseOptionsAreValid) {
  EXPECT_TRUE(ValidateSimOptions(BaseOptions()).ok());
}

TEST(SimOptionsTest, ZeroZonesAreRejected) {
  SimOptions options = BaseOptions();
  options.zones = 0;
  const absl::Status status = ValidateSimOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("zones must be >= 1, got 0"),
            absl::string_view::npos)
      << status;
}

TEST(SimOptionsTest, TooManySeriesPerZoneAreRejected) {
  SimOptions options = BaseOptions();
  options.series_per_zone = 100000;
  const absl::Status status = ValidateSimOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("series_per_zone must be between 1 and"),
            absl::string_view::npos)
      << status;
}

TEST(SimOptionsTest, ZeroZonesPerQueryAreRejected) {
  SimOptions options = BaseOptions();
  options.zones_per_query = 0;
  EXPECT_EQ(ValidateSimOptions(options).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SimOptionsTest, ZeroDurationIsRejected) {
  SimOptions options = BaseOptions();
  options.duration = absl::ZeroDuration();
  const absl::Status status = ValidateSimOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("duration"), absl::string_view::npos)
      << status;
}

TEST(SimOptionsTest, InvalidLaneOptionsAreRejected) {
  SimOptions options = BaseOptions();
  options.lanes.backfill_chunk = absl::ZeroDuration();
  const absl::Status status = ValidateSimOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("backfill_chunk"), absl::string_view::npos)
      << status;
}

TEST(SimOptionsTest, FactoryRejectsInvalidOptions) {
  SimOptions options = BaseOptions();
  options.zones = 0;
  EXPECT_EQ(MakeSimSource(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Fetch ------------------------------------------------------------------

TEST(SimSourceTest, SameTaskGivesSameObservations) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  const FetchTask task = LiveTask(0, kStart + absl::Minutes(3));
  ExpectSame(Fetch(*source, task), Fetch(*source, task));
}

TEST(SimSourceTest, SeparateSourcesAgree) {
  std::unique_ptr<Source> first = MakeSource(BaseOptions());
  std::unique_ptr<Source> second = MakeSource(BaseOptions());
  const FetchTask task = LiveTask(1, kStart + absl::Minutes(3));
  ExpectSame(Fetch(*first, task), Fetch(*second, task));
}

TEST(SimSourceTest, ConcurrentFetchesMatch) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  const FetchTask task = LiveTask(0, kStart + absl::Minutes(7));
  std::vector<Observation> a;
  std::vector<Observation> b;
  {
    std::jthread first([&] { a = Fetch(*source, task); });
    std::jthread second([&] { b = Fetch(*source, task); });
  }
  ExpectSame(a, b);
}

TEST(SimSourceTest, DifferentSeedChangesValues) {
  SimOptions options = BaseOptions();
  std::unique_ptr<Source> first = MakeSource(options);
  options.seed = 8;
  std::unique_ptr<Source> second = MakeSource(options);

  const FetchTask task = LiveTask(0, kStart + absl::Minutes(10));
  const std::vector<Observation> a = Fetch(*first, task);
  const std::vector<Observation> b = Fetch(*second, task);
  ASSERT_EQ(a.size(), b.size());
  size_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].series, b[i].series);
    if (a[i].value != b[i].value) ++differing;
  }
  EXPECT_GT(differing, a.size() / 2);
}

TEST(SimSourceTest, SeriesAreDistinctAtMaxCardinality) {
  SimOptions options = BaseOptions();
  options.series_per_zone = 1;
  while (ValidateSimOptions(options).ok()) ++options.series_per_zone;
  --options.series_per_zone;  // the largest valid value
  ASSERT_GT(options.series_per_zone, 100u);
  std::unique_ptr<Source> source = MakeSource(options);

  const std::vector<Observation> observations =
      Fetch(*source, BucketTask(0, kStart, absl::Minutes(10)));
  std::set<std::string> series;
  for (const Observation& observation : observations) {
    series.insert(observation.series.encoded());
  }
  EXPECT_EQ(observations.size(), 2u * options.series_per_zone);
  EXPECT_EQ(series.size(), observations.size());
}

TEST(SimSourceTest, SeriesUseCloudflareFamilies) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  const std::vector<Observation> observations =
      Fetch(*source, BucketTask(1, kStart, absl::Minutes(10)));
  std::set<std::string> names;
  for (const Observation& observation : observations) {
    names.insert(std::string(observation.series.name()));
  }
  EXPECT_TRUE(names.count("cloudflare_zone_requests_total"));
  EXPECT_TRUE(names.count("cloudflare_zone_bandwidth_total"));
  EXPECT_TRUE(names.count("cloudflare_zone_requests_status"));
  EXPECT_TRUE(names.count("cloudflare_zone_requests_country"));
}

TEST(SimSourceTest, CountrySeriesCarryRegion) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  const std::string expected =
      R"(cloudflare_zone_requests_country{country="US",region="Americas",)"
      R"(zone="zone-0"})";
  bool found = false;
  for (const Observation& observation :
       Fetch(*source, BucketTask(0, kStart, absl::Minutes(10)))) {
    if (observation.series.ToString() == expected) found = true;
  }
  EXPECT_TRUE(found) << expected;
}

TEST(SimSourceTest, PartitionCoversItsZoneGroup) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  std::set<std::string> zones;
  for (const Observation& observation :
       Fetch(*source, BucketTask(1, kStart, absl::Minutes(10)))) {
    for (const auto& [name, value] : observation.series.labels()) {
      if (name == "zone") zones.insert(std::string(value));
    }
  }
  EXPECT_EQ(zones, (std::set<std::string>{"zone-2"}));
}

TEST(SimSourceTest, UnknownPartitionFails) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  std::vector<Observation> observations;
  const absl::Status status =
      harness::FetchAll(*source, LiveTask(2, kStart + absl::Minutes(5)), &observations);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(SimSourceTest, BucketsAreEndedWholeMinutesInRange) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  const absl::Time now = kStart + absl::Seconds(30);
  const FetchTask task = LiveTask(0, now);
  std::set<int64_t> buckets;
  for (const Observation& observation : Fetch(*source, task)) {
    buckets.insert(observation.bucket_ms);
  }

  // Range [18:50:30, 19:00:30): whole minutes 18:51 .. 19:00, and only those
  // that ended by 19:00:30, so 18:51 .. 18:59.
  std::set<int64_t> expected;
  for (int minute = 51; minute <= 59; ++minute) {
    expected.insert(absl::ToUnixMillis(kStart - absl::Minutes(60 - minute)));
  }
  EXPECT_EQ(buckets, expected);
}

TEST(SimSourceTest, CurrentMinuteIsNotReported) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  EXPECT_TRUE(
      Fetch(*source, BucketTask(0, kStart, absl::Seconds(59))).empty());
  EXPECT_FALSE(
      Fetch(*source, BucketTask(0, kStart, absl::Seconds(60))).empty());
}

// Young buckets show about 4%, 45% and 90% of their final value, and the
// final value from four minutes on.
TEST(SimSourceTest, ValuesConvergeOverMinutes) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  const auto at_age = [&](absl::Duration age) {
    return Fetch(*source, BucketTask(0, kStart, age));
  };
  const std::vector<Observation> final_values = at_age(absl::Minutes(5));
  const std::vector<Observation> four = at_age(absl::Minutes(4));
  const struct {
    absl::Duration age;
    double low;
    double high;
  } stages[] = {{absl::Minutes(1), 0.03, 0.05},
                {absl::Seconds(150), 0.40, 0.50},
                {absl::Minutes(3), 0.87, 0.93}};

  for (const auto& stage : stages) {
    const std::vector<Observation> young = at_age(stage.age);
    ASSERT_EQ(young.size(), final_values.size());
    for (size_t i = 0; i < young.size(); ++i) {
      const double final_value = static_cast<double>(final_values[i].value);
      if (final_value < 1000) continue;  // rounding dominates tiny values
      const double share = static_cast<double>(young[i].value) / final_value;
      EXPECT_GE(share, stage.low - 0.001) << final_values[i].series.ToString();
      EXPECT_LE(share, stage.high + 0.001) << final_values[i].series.ToString();
    }
  }
  ExpectSame(four, final_values);
}

TEST(SimSourceTest, RepeatedStageGivesSameValue) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  ExpectSame(Fetch(*source, BucketTask(0, kStart, absl::Seconds(120))),
             Fetch(*source, BucketTask(0, kStart, absl::Seconds(170))));
}

// About one (series, bucket) in a thousand is revised 6 to 8 minutes in,
// sometimes downwards, and never again after that.
TEST(SimSourceTest, RevisionsAreRareAndLate) {
  SimOptions options = BaseOptions();
  options.zones = 10;
  options.zones_per_query = 10;
  options.series_per_zone = 100;
  std::unique_ptr<Source> source = MakeSource(options);

  int revised = 0;
  int down = 0;
  int total = 0;
  for (int minute = 0; minute < 60; ++minute) {
    const absl::Time bucket = kStart + absl::Minutes(minute);
    const std::vector<Observation> settled =
        Fetch(*source, BucketTask(0, bucket, absl::Seconds(359)));
    const std::vector<Observation> before =
        Fetch(*source, BucketTask(0, bucket, absl::Minutes(4)));
    const std::vector<Observation> after =
        Fetch(*source, BucketTask(0, bucket, absl::Minutes(9)));
    const std::vector<Observation> old =
        Fetch(*source, BucketTask(0, bucket, absl::Hours(1)));
    ExpectSame(before, settled);  // no revision before 6 minutes
    ExpectSame(after, old);       // nothing changes after 8 minutes
    ASSERT_EQ(after.size(), settled.size());
    for (size_t i = 0; i < after.size(); ++i) {
      ++total;
      if (after[i].value != settled[i].value) ++revised;
      if (after[i].value < settled[i].value) ++down;
    }
  }

  ASSERT_EQ(total, 60000);
  EXPECT_GE(revised, 20);   // expected about 60
  EXPECT_LE(revised, 150);
  EXPECT_GE(down, 1);
  EXPECT_LT(down, revised);
}

TEST(SimSourceTest, BackfillRangeShowsSettledValues) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  const absl::Time bucket = kStart - absl::Minutes(90);
  const FetchTask backfill =
      Task(0, kStart - absl::Minutes(100), kStart - absl::Minutes(80), kStart);
  const auto values = ByKey(Fetch(*source, backfill));
  const auto settled = ByKey(Fetch(*source, BucketTask(0, bucket, absl::Minutes(9))));

  ASSERT_EQ(values.size(), 20u * settled.size());
  for (const auto& [key, value] : settled) {
    ASSERT_TRUE(values.count(key)) << key.first;
    EXPECT_EQ(values.at(key), value) << key.first;
  }
}

// --- Ticks ------------------------------------------------------------------

TEST(SimSourceTest, TickNowAdvancesByPollInterval) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  for (uint64_t k = 0; k < 4; ++k) {
    std::optional<TickPlan> plan = source->NextTick({});
    ASSERT_TRUE(plan.has_value());
    EXPECT_EQ(plan->tick, k);
    EXPECT_EQ(plan->now, kStart + absl::Seconds(30) * k);
  }
}

TEST(SimSourceTest, RunEndsAfterDuration) {
  SimOptions options = BaseOptions();
  options.duration = absl::Minutes(5);
  std::unique_ptr<Source> source = MakeSource(options);

  std::vector<TickPlan> plans;
  while (std::optional<TickPlan> plan = source->NextTick({})) {
    plans.push_back(*std::move(plan));
  }
  ASSERT_EQ(plans.size(), 11u);  // 0 s, 30 s, ... 300 s
  EXPECT_EQ(plans.back().now, kStart + absl::Minutes(5));
}

TEST(SimSourceTest, TickPlansLiveLaneThenBackfill) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  std::optional<TickPlan> plan = source->NextTick({});
  ASSERT_TRUE(plan.has_value());

  ASSERT_EQ(plan->tasks.size(), 3u);  // two zone groups, one backfill call
  EXPECT_EQ(plan->tasks[0].lane, Lane::kLive);
  EXPECT_EQ(plan->tasks[1].lane, Lane::kLive);
  EXPECT_EQ(plan->tasks[2].lane, Lane::kBackfill);
  EXPECT_EQ(plan->tasks[2].range.start, kStart - absl::Hours(2));
}

TEST(SimSourceTest, BackfillFinishesWhenTasksSucceed) {
  SimOptions options = BaseOptions();
  options.duration = absl::Hours(2);
  std::unique_ptr<Source> source = MakeSource(options);

  // 2 h - 10 min of backfill in 10-minute chunks, for two zone groups.
  int backfill_calls = 0;
  uint64_t last_backfill_tick = 0;
  while (std::optional<TickPlan> plan = source->NextTick({})) {
    for (const FetchTask& task : plan->tasks) {
      if (task.lane == Lane::kBackfill) {
        ++backfill_calls;
        last_backfill_tick = plan->tick;
      }
      source->OnTaskDone(task, absl::OkStatus());
    }
  }
  EXPECT_EQ(backfill_calls, 22);
  EXPECT_EQ(last_backfill_tick, 21u);
}

TEST(SimSourceTest, FailedBackfillIsPlannedAgain) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  std::optional<TickPlan> first = source->NextTick({});
  ASSERT_TRUE(first.has_value());
  // Live fetches succeed (a failed one would plan a gap call, which takes
  // the backfill budget first); the backfill call fails.
  for (const FetchTask& task : first->tasks) {
    source->OnTaskDone(task, task.lane == Lane::kLive
                                 ? absl::OkStatus()
                                 : absl::UnavailableError("injected"));
  }

  std::optional<TickPlan> second = source->NextTick({});
  ASSERT_TRUE(second.has_value());
  ASSERT_EQ(second->tasks.size(), 3u);
  EXPECT_EQ(second->tasks[2].range.start, first->tasks[2].range.start);
  EXPECT_EQ(second->tasks[2].partition, first->tasks[2].partition);
}

TEST(SimSourceTest, StoppedTokenEndsRun) {
  std::unique_ptr<Source> source = MakeSource(BaseOptions());
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(source->NextTick(stop.get_token()).has_value());
}

// A realtime tick an hour away must end as soon as stop is requested. The
// future's wait only bounds a hang and measures nothing.
TEST(SimSourceTest, RealtimeStopWakesWaitingTick) {
  SimOptions options = BaseOptions();
  options.realtime = true;
  options.lanes.poll_interval = absl::Hours(1);
  options.lanes.lookback = absl::Hours(1);
  options.lanes.max_backfill = absl::ZeroDuration();
  std::unique_ptr<Source> source = MakeSource(options);
  std::stop_source stop;

  ASSERT_TRUE(source->NextTick(stop.get_token()).has_value());  // due now
  std::future<std::optional<TickPlan>> waiting = std::async(
      std::launch::async, [&] { return source->NextTick(stop.get_token()); });
  stop.request_stop();

  if (waiting.wait_for(std::chrono::minutes(2)) != std::future_status::ready) {
    // The future's destructor would wait for the hung call forever.
    std::fprintf(stderr, "NextTick did not return after the stop request\n");
    std::abort();
  }
  EXPECT_FALSE(waiting.get().has_value());
}

}  // namespace
}  // namespace converge

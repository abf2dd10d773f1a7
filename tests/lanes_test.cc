#include "converge/lanes.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace converge {
namespace {

// 2026-06-24T19:00:00Z.
const absl::Time kStart = absl::FromUnixSeconds(1'782'327'600);

std::vector<FetchTask> BackfillTasks(const TickPlan& plan) {
  std::vector<FetchTask> tasks;
  for (const FetchTask& task : plan.tasks) {
    if (task.lane == Lane::kBackfill) tasks.push_back(task);
  }
  return tasks;
}

// --- ValidateLaneOptions ----------------------------------------------------

TEST(LaneOptionsTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateLaneOptions(LaneOptions{}).ok());
}

TEST(LaneOptionsTest, ZeroChunkIsRejected) {
  LaneOptions options;
  options.backfill_chunk = absl::ZeroDuration();
  const absl::Status status = ValidateLaneOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("backfill_chunk must be > 0, got 0"),
            absl::string_view::npos)
      << status;
}

TEST(LaneOptionsTest, ZeroPollIntervalIsRejected) {
  LaneOptions options;
  options.poll_interval = absl::ZeroDuration();
  const absl::Status status = ValidateLaneOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("poll_interval"), absl::string_view::npos)
      << status;
}

TEST(LaneOptionsTest, NegativeMaxBackfillIsRejected) {
  LaneOptions options;
  options.max_backfill = absl::Minutes(-1);
  const absl::Status status = ValidateLaneOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("max_backfill must be >= 0, got -1m"),
            absl::string_view::npos)
      << status;
}

TEST(LaneOptionsTest, InfiniteLookbackIsRejected) {
  LaneOptions options;
  options.lookback = absl::InfiniteDuration();
  const absl::Status status = ValidateLaneOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("lookback must be finite"),
            absl::string_view::npos)
      << status;
}

TEST(LaneOptionsTest, NegativeCallsPerTickIsRejected) {
  LaneOptions options;
  options.backfill_calls_per_tick = -1;
  const absl::Status status = ValidateLaneOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("backfill_calls_per_tick must be >= 0, got -1"),
            absl::string_view::npos)
      << status;
}

TEST(LaneOptionsTest, PollLongerThanLookbackIsRejected) {
  LaneOptions options;
  options.poll_interval = absl::Minutes(11);
  options.lookback = absl::Minutes(10);
  const absl::Status status = ValidateLaneOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("poll_interval (11m) must be <= lookback"),
            absl::string_view::npos)
      << status;
}

TEST(LaneOptionsTest, TooManyChunksAreRejected) {
  LaneOptions options;
  options.max_backfill = absl::Hours(24 * 365);
  options.backfill_chunk = absl::Seconds(1);
  const absl::Status status = ValidateLaneOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("backfill_chunk"), absl::string_view::npos)
      << status;
}

// --- LanePlanner ------------------------------------------------------------

class LanePlannerTest : public ::testing::Test {
 protected:
  LanePlannerTest() {
    options_.poll_interval = absl::Seconds(30);
    options_.lookback = absl::Minutes(10);
    options_.max_backfill = absl::Minutes(40);  // backfill [start-40m, start-10m)
    options_.backfill_chunk = absl::Minutes(10);
    options_.backfill_calls_per_tick = 1;
  }

  LanePlanner Make(uint32_t partitions) {
    EXPECT_TRUE(ValidateLaneOptions(options_).ok());
    return LanePlanner(options_, kStart, partitions);
  }

  // Plans tick `tick`, reports every live task as successful and every
  // backfill task as `ok`.
  static TickPlan RunTick(LanePlanner& planner, uint64_t tick, bool ok) {
    TickPlan plan = planner.Plan(tick, kStart + absl::Seconds(30) * tick);
    for (const FetchTask& task : plan.tasks) {
      planner.OnTaskDone(task, task.lane == Lane::kLive || ok);
    }
    return plan;
  }

  // Reports the live tasks of `plan` as successful.
  static void LiveSucceeded(LanePlanner& planner, const TickPlan& plan) {
    for (const FetchTask& task : plan.tasks) {
      if (task.lane == Lane::kLive) planner.OnTaskDone(task, true);
    }
  }

  LaneOptions options_;
};

TEST_F(LanePlannerTest, LiveLaneCoversLookbackForEveryPartition) {
  LanePlanner planner = Make(3);
  const absl::Time now = kStart + absl::Minutes(5);
  const TickPlan plan = planner.Plan(10, now);

  ASSERT_GE(plan.tasks.size(), 3u);
  for (uint32_t partition = 0; partition < 3; ++partition) {
    const FetchTask& task = plan.tasks[partition];
    EXPECT_EQ(task.lane, Lane::kLive);
    EXPECT_EQ(task.partition, partition);
    EXPECT_EQ(task.range.start, now - absl::Minutes(10));
    EXPECT_EQ(task.range.end, now);
  }
}

TEST_F(LanePlannerTest, TasksCarryTickIndexAndNow) {
  options_.backfill_calls_per_tick = 2;
  LanePlanner planner = Make(2);
  const absl::Time now = kStart + absl::Minutes(1);
  const TickPlan plan = planner.Plan(7, now);

  EXPECT_EQ(plan.tick, 7u);
  EXPECT_EQ(plan.now, now);
  ASSERT_EQ(plan.tasks.size(), 4u);
  for (uint32_t i = 0; i < plan.tasks.size(); ++i) {
    EXPECT_EQ(plan.tasks[i].index, i);
    EXPECT_EQ(plan.tasks[i].tick, 7u);
    EXPECT_EQ(plan.tasks[i].now, now);
  }
}

TEST_F(LanePlannerTest, LiveTasksComeBeforeBackfill) {
  options_.backfill_calls_per_tick = 3;
  LanePlanner planner = Make(2);
  const TickPlan plan = planner.Plan(0, kStart);

  ASSERT_EQ(plan.tasks.size(), 5u);
  EXPECT_EQ(plan.tasks[0].lane, Lane::kLive);
  EXPECT_EQ(plan.tasks[1].lane, Lane::kLive);
  EXPECT_EQ(plan.tasks[2].lane, Lane::kBackfill);
  EXPECT_EQ(plan.tasks[3].lane, Lane::kBackfill);
  EXPECT_EQ(plan.tasks[4].lane, Lane::kBackfill);
}

TEST_F(LanePlannerTest, BackfillStartsWithOldestChunk) {
  LanePlanner planner = Make(1);
  const std::vector<FetchTask> backfill =
      BackfillTasks(planner.Plan(0, kStart));

  ASSERT_EQ(backfill.size(), 1u);
  EXPECT_EQ(backfill[0].range.start, kStart - absl::Minutes(40));
  EXPECT_EQ(backfill[0].range.end, kStart - absl::Minutes(30));
  EXPECT_EQ(backfill[0].partition, 0u);
}

TEST_F(LanePlannerTest, BackfillRespectsCallsPerTick) {
  options_.backfill_calls_per_tick = 2;
  LanePlanner planner = Make(4);
  const TickPlan plan = planner.Plan(0, kStart);

  EXPECT_EQ(BackfillTasks(plan).size(), 2u);
  EXPECT_EQ(plan.tasks.size(), 6u);
}

TEST_F(LanePlannerTest, ChunksTileBackfillRangeOldestFirst) {
  options_.max_backfill = absl::Minutes(35);  // 25 minutes: 10 + 10 + 5
  LanePlanner planner = Make(1);
  ASSERT_EQ(planner.backfill_chunks_total(), 3u);

  std::vector<TimeRange> ranges;
  for (uint64_t tick = 0; tick < 5; ++tick) {
    for (const FetchTask& task : BackfillTasks(RunTick(planner, tick, true))) {
      ranges.push_back(task.range);
    }
  }

  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[0].start, kStart - absl::Minutes(35));
  EXPECT_EQ(ranges[0].end, kStart - absl::Minutes(25));
  EXPECT_EQ(ranges[1].start, kStart - absl::Minutes(25));
  EXPECT_EQ(ranges[1].end, kStart - absl::Minutes(15));
  EXPECT_EQ(ranges[2].start, kStart - absl::Minutes(15));
  EXPECT_EQ(ranges[2].end, kStart - absl::Minutes(10));  // the shorter one
  EXPECT_EQ(planner.backfill_chunks_done(), 3u);
}

TEST_F(LanePlannerTest, EachChunkIsFetchedForEveryPartition) {
  LanePlanner planner = Make(2);
  const std::vector<FetchTask> first = BackfillTasks(RunTick(planner, 0, true));
  const std::vector<FetchTask> second =
      BackfillTasks(RunTick(planner, 1, true));

  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(first[0].partition, 0u);
  EXPECT_EQ(second[0].partition, 1u);
  EXPECT_EQ(first[0].range.start, second[0].range.start);
  EXPECT_EQ(first[0].range.end, second[0].range.end);
}

TEST_F(LanePlannerTest, ChunkIsDoneOnlyWhenAllPartitionsSucceed) {
  LanePlanner planner = Make(2);
  EXPECT_EQ(planner.backfill_chunks_total(), 3u);

  RunTick(planner, 0, true);
  EXPECT_EQ(planner.backfill_chunks_done(), 0u);
  RunTick(planner, 1, true);
  EXPECT_EQ(planner.backfill_chunks_done(), 1u);
}

TEST_F(LanePlannerTest, FailedBackfillCallIsRetried) {
  LanePlanner planner = Make(1);
  const std::vector<FetchTask> failed =
      BackfillTasks(RunTick(planner, 0, false));
  const std::vector<FetchTask> retried =
      BackfillTasks(RunTick(planner, 1, true));

  ASSERT_EQ(failed.size(), 1u);
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].range.start, failed[0].range.start);
  EXPECT_EQ(retried[0].partition, failed[0].partition);
  EXPECT_EQ(planner.backfill_chunks_done(), 1u);
}

TEST_F(LanePlannerTest, FailedCallDoesNotCountAsDone) {
  LanePlanner planner = Make(1);
  RunTick(planner, 0, false);
  EXPECT_EQ(planner.backfill_chunks_done(), 0u);
}

TEST_F(LanePlannerTest, RetriesStayOldestFirst) {
  options_.backfill_calls_per_tick = 2;
  LanePlanner planner = Make(1);
  TickPlan plan = planner.Plan(0, kStart);
  LiveSucceeded(planner, plan);
  std::vector<FetchTask> backfill = BackfillTasks(plan);
  ASSERT_EQ(backfill.size(), 2u);

  // Report the newer call's failure first; the older must still come first.
  planner.OnTaskDone(backfill[1], false);
  planner.OnTaskDone(backfill[0], false);
  const std::vector<FetchTask> retried =
      BackfillTasks(planner.Plan(1, kStart + absl::Seconds(30)));

  ASSERT_EQ(retried.size(), 2u);
  EXPECT_EQ(retried[0].range.start, backfill[0].range.start);
  EXPECT_EQ(retried[1].range.start, backfill[1].range.start);
}

TEST_F(LanePlannerTest, InFlightCallsAreNotPlannedAgain) {
  LanePlanner planner = Make(1);
  const TickPlan plan = planner.Plan(0, kStart);
  LiveSucceeded(planner, plan);
  const std::vector<FetchTask> first = BackfillTasks(plan);
  const std::vector<FetchTask> second =
      BackfillTasks(planner.Plan(1, kStart + absl::Seconds(30)));

  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_LT(first[0].range.start, second[0].range.start);
}

TEST_F(LanePlannerTest, DuplicateReportIsIgnored) {
  LanePlanner planner = Make(2);
  const std::vector<FetchTask> backfill =
      BackfillTasks(planner.Plan(0, kStart));
  ASSERT_EQ(backfill.size(), 1u);

  planner.OnTaskDone(backfill[0], true);
  planner.OnTaskDone(backfill[0], true);
  EXPECT_EQ(planner.backfill_chunks_done(), 0u);
}

TEST_F(LanePlannerTest, LiveReportsDoNotAffectBackfill) {
  LanePlanner planner = Make(1);
  const TickPlan plan = planner.Plan(0, kStart);
  for (const FetchTask& task : plan.tasks) {
    if (task.lane == Lane::kLive) planner.OnTaskDone(task, false);
  }
  EXPECT_EQ(planner.backfill_chunks_done(), 0u);
  EXPECT_EQ(BackfillTasks(planner.Plan(1, kStart)).size(), 1u);
}

TEST_F(LanePlannerTest, BackfillEndsAfterLastChunk) {
  LanePlanner planner = Make(1);
  for (uint64_t tick = 0; tick < 3; ++tick) RunTick(planner, tick, true);

  const TickPlan plan = RunTick(planner, 3, true);
  EXPECT_TRUE(BackfillTasks(plan).empty());
  EXPECT_EQ(plan.tasks.size(), 1u);
  EXPECT_EQ(planner.backfill_chunks_done(), planner.backfill_chunks_total());
}

TEST_F(LanePlannerTest, ZeroCallsPerTickPausesBackfill) {
  options_.backfill_calls_per_tick = 0;
  LanePlanner planner = Make(1);
  EXPECT_TRUE(BackfillTasks(planner.Plan(0, kStart)).empty());
}

TEST_F(LanePlannerTest, ZeroMaxBackfillPlansNoBackfill) {
  options_.max_backfill = absl::ZeroDuration();
  LanePlanner planner = Make(1);
  EXPECT_EQ(planner.backfill_chunks_total(), 0u);
  EXPECT_TRUE(BackfillTasks(planner.Plan(0, kStart)).empty());
}

TEST_F(LanePlannerTest, BackfillWithinLookbackPlansNothing) {
  options_.max_backfill = absl::Minutes(10);
  LanePlanner planner = Make(1);
  EXPECT_EQ(planner.backfill_chunks_total(), 0u);
}

// --- Gap lane ----------------------------------------------------------------

std::vector<FetchTask> GapTasks(const TickPlan& plan) {
  std::vector<FetchTask> gaps;
  for (const FetchTask& task : plan.tasks) {
    if (task.lane == Lane::kGap) gaps.push_back(task);
  }
  return gaps;
}

void ReportAll(LanePlanner& planner, const TickPlan& plan, bool live_ok,
               bool other_ok) {
  for (const FetchTask& task : plan.tasks) {
    planner.OnTaskDone(task, task.lane == Lane::kLive ? live_ok : other_ok);
  }
}

TEST_F(LanePlannerTest, RegularTicksPlanNoGap) {
  options_.max_backfill = absl::ZeroDuration();
  LanePlanner planner = Make(2);
  for (uint64_t tick = 0; tick < 100; ++tick) {
    const TickPlan plan = planner.Plan(tick, kStart + absl::Seconds(30) * tick);
    EXPECT_TRUE(GapTasks(plan).empty()) << "tick " << tick;
    ReportAll(planner, plan, true, true);
  }
  EXPECT_EQ(planner.gap_scheduled(), absl::ZeroDuration());
}

TEST_F(LanePlannerTest, PauseLongerThanLookbackPlansGap) {
  options_.max_backfill = absl::ZeroDuration();
  options_.backfill_calls_per_tick = 10;
  LanePlanner planner = Make(1);
  ReportAll(planner, planner.Plan(0, kStart), true, true);

  // No tick for 35 minutes: [start, start + 25m) fell out of the live range.
  const TickPlan plan = planner.Plan(1, kStart + absl::Minutes(35));
  const std::vector<FetchTask> gaps = GapTasks(plan);
  ASSERT_EQ(gaps.size(), 3u);
  EXPECT_EQ(gaps[0].range.start, kStart);
  EXPECT_EQ(gaps[0].range.end, kStart + absl::Minutes(10));
  EXPECT_EQ(gaps[1].range.start, kStart + absl::Minutes(10));
  EXPECT_EQ(gaps[2].range.end, kStart + absl::Minutes(25));
  EXPECT_EQ(planner.gap_scheduled(), absl::Minutes(25));
}

TEST_F(LanePlannerTest, FailedLiveFetchPlansWhatLeavesLiveRange) {
  options_.max_backfill = absl::ZeroDuration();
  options_.backfill_calls_per_tick = 10;
  LanePlanner planner = Make(1);

  // Tick 0's live fetch of [start - 10m, start] fails.
  TickPlan plan = planner.Plan(0, kStart);
  EXPECT_TRUE(GapTasks(plan).empty());
  ReportAll(planner, plan, false, true);

  // Tick 1's live range starts half a minute later, so that half minute is
  // planned on the gap lane; the rest is fetched again by the live lane.
  plan = planner.Plan(1, kStart + absl::Seconds(30));
  const std::vector<FetchTask> gaps = GapTasks(plan);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].range.start, kStart - absl::Minutes(10));
  EXPECT_EQ(gaps[0].range.end, kStart - absl::Seconds(570));
  ReportAll(planner, plan, true, true);

  // Once live fetches succeed again, nothing more is planned.
  plan = planner.Plan(2, kStart + absl::Seconds(60));
  EXPECT_TRUE(GapTasks(plan).empty());
}

TEST_F(LanePlannerTest, LongOutageMergesGapCalls) {
  options_.max_backfill = absl::ZeroDuration();
  options_.backfill_calls_per_tick = 0;  // keep every gap call pending
  LanePlanner planner = Make(1);
  // 60 minutes of failed live fetches, every 30 s.
  for (uint64_t tick = 0; tick <= 120; ++tick) {
    ReportAll(planner, planner.Plan(tick, kStart + absl::Seconds(30) * tick),
              false, false);
  }
  // [start - 10m, start + 50m) left the live range: 60 minutes, pending as
  // six 10-minute calls rather than 120 half-minute ones.
  EXPECT_EQ(planner.gap_scheduled(), absl::Minutes(60));
  EXPECT_EQ(planner.gap_calls_pending(), 6u);
}

TEST_F(LanePlannerTest, FailedGapCallIsRetried) {
  options_.max_backfill = absl::ZeroDuration();
  LanePlanner planner = Make(1);
  ReportAll(planner, planner.Plan(0, kStart), true, true);

  TickPlan plan = planner.Plan(1, kStart + absl::Minutes(25));
  std::vector<FetchTask> gaps = GapTasks(plan);
  ASSERT_EQ(gaps.size(), 1u);
  const TimeRange first = gaps[0].range;
  ReportAll(planner, plan, true, false);

  plan = planner.Plan(2, kStart + absl::Minutes(25) + absl::Seconds(30));
  gaps = GapTasks(plan);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].range.start, first.start);
  EXPECT_EQ(gaps[0].range.end, first.end);
}

TEST_F(LanePlannerTest, GapGoesBeforeStartupBackfill) {
  LanePlanner planner = Make(1);  // 3 backfill chunks, 1 call per tick
  ReportAll(planner, planner.Plan(0, kStart), true, true);
  const TickPlan plan = planner.Plan(1, kStart + absl::Minutes(25));
  ASSERT_EQ(GapTasks(plan).size(), 1u);
  EXPECT_TRUE(BackfillTasks(plan).empty());
}

}  // namespace
}  // namespace converge

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "converge/sources.h"
#include "converge/time_util.h"
#include "testing/fetch_all.h"

namespace converge {
namespace {

namespace fs = std::filesystem;

const char kFixtureDir[] =
    CONVERGE_SOURCE_DIR "/../shared/fixtures/cloudflare-recorded";

std::string RecordingJson(int seq, const std::string& start,
                          const std::string& end, uint64_t value) {
  return absl::StrCat(R"({"seq":)", seq, R"(,"start":")", start,
                      R"(","end":")", end, R"(","observations":[)",
                      R"({"name":"cloudflare_zone_requests_total",)",
                      R"("labels":{"zone":"a"},"value":)", value,
                      R"(,"bucket":")", start, R"("}]})");
}

absl::Time Time(const std::string& text) {
  absl::StatusOr<absl::Time> time = ParseRfc3339(text);
  EXPECT_TRUE(time.ok()) << time.status();
  return time.value_or(absl::Time());
}

// Replays the real recorded fixtures.
class ReplayFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(kFixtureDir)) {
      GTEST_SKIP() << "recorded fixtures not found at " << kFixtureDir;
    }
    ReplayOptions options;
    options.dir = kFixtureDir;
    absl::StatusOr<std::unique_ptr<Source>> source = MakeReplaySource(options);
    ASSERT_TRUE(source.ok()) << source.status();
    source_ = std::move(*source);
  }

  std::vector<TickPlan> AllTicks() {
    std::vector<TickPlan> ticks;
    while (std::optional<TickPlan> plan = source_->NextTick({})) {
      ticks.push_back(*std::move(plan));
    }
    return ticks;
  }

  std::unique_ptr<Source> source_;
};

TEST_F(ReplayFixtureTest, OneTickPerFile) {
  const std::vector<TickPlan> ticks = AllTicks();
  ASSERT_EQ(ticks.size(), 7u);
  for (uint64_t i = 0; i < ticks.size(); ++i) {
    EXPECT_EQ(ticks[i].tick, i);
    ASSERT_EQ(ticks[i].tasks.size(), 1u);
    const FetchTask& task = ticks[i].tasks[0];
    EXPECT_EQ(task.lane, Lane::kReplay);
    EXPECT_EQ(task.tick, i);
    EXPECT_EQ(task.index, 0u);
    EXPECT_EQ(task.partition, 0u);  // one stream: the same zones throughout
    EXPECT_EQ(task.now, ticks[i].now);
    EXPECT_EQ(task.range.end, ticks[i].now);
  }
}

TEST_F(ReplayFixtureTest, NowIsEachRecordingsEnd) {
  const std::vector<TickPlan> ticks = AllTicks();
  ASSERT_EQ(ticks.size(), 7u);
  EXPECT_EQ(ticks[0].now, Time("2026-06-24T12:04:44.098587458-07:00"));
  EXPECT_EQ(ticks[0].tasks[0].range.start,
            Time("2026-06-24T11:54:44.098587458-07:00"));
  // After the live fetch, the backfill recordings move `now` back.
  EXPECT_EQ(ticks[1].now, Time("2026-06-24T11:14:00-07:00"));
  EXPECT_EQ(ticks[6].now, Time("2026-06-24T11:54:44.098587458-07:00"));
}

TEST_F(ReplayFixtureTest, FetchReturnsRecordedObservations) {
  const std::vector<TickPlan> ticks = AllTicks();
  size_t total = 0;
  for (const TickPlan& plan : ticks) {
    std::vector<Observation> observations;
    ASSERT_TRUE(harness::FetchAll(*source_, plan.tasks[0], &observations).ok());
    total += observations.size();
  }
  EXPECT_EQ(total, 60u);

  std::vector<Observation> first;
  ASSERT_TRUE(harness::FetchAll(*source_, ticks[0].tasks[0], &first).ok());
  ASSERT_EQ(first.size(), 9u);
  EXPECT_EQ(first[0].series.ToString(),
            R"(cloudflare_zone_requests_total{zone="fixture-recording"})");
  EXPECT_EQ(first[0].value, 21581117u);
  EXPECT_EQ(first[0].bucket_ms, *ParseRfc3339Millis("2026-06-24T18:59:00Z"));
}

TEST_F(ReplayFixtureTest, FetchAppendsToOutput) {
  const std::vector<TickPlan> ticks = AllTicks();
  std::vector<Observation> observations(2);
  ASSERT_TRUE(harness::FetchAll(*source_, ticks[0].tasks[0], &observations).ok());
  EXPECT_EQ(observations.size(), 11u);
}

TEST_F(ReplayFixtureTest, ConcurrentFetchesMatch) {
  const std::vector<TickPlan> ticks = AllTicks();
  std::vector<Observation> a;
  std::vector<Observation> b;
  {
    std::jthread first([&] { ASSERT_TRUE(harness::FetchAll(*source_, ticks[1].tasks[0], &a).ok()); });
    std::jthread second([&] { ASSERT_TRUE(harness::FetchAll(*source_, ticks[1].tasks[0], &b).ok()); });
  }
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].series, b[i].series);
    EXPECT_EQ(a[i].value, b[i].value);
  }
}

TEST_F(ReplayFixtureTest, EndsAfterLastFile) {
  AllTicks();
  EXPECT_FALSE(source_->NextTick({}).has_value());
}

TEST_F(ReplayFixtureTest, StopRequestEndsReplay) {
  std::stop_source stop;
  ASSERT_TRUE(source_->NextTick(stop.get_token()).has_value());
  stop.request_stop();
  EXPECT_FALSE(source_->NextTick(stop.get_token()).has_value());
}

TEST_F(ReplayFixtureTest, UnknownTickFails) {
  FetchTask task;
  task.lane = Lane::kReplay;
  task.tick = 99;
  std::vector<Observation> observations;
  EXPECT_EQ(harness::FetchAll(*source_, task, &observations).code(),
            absl::StatusCode::kInvalidArgument);
}

// Folders written by the test itself.
class ReplayFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("converge_replay_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()
                            ->current_test_info()
                            ->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }

  absl::StatusOr<std::unique_ptr<Source>> Load() {
    ReplayOptions options;
    options.dir = dir_.string();
    return MakeReplaySource(options);
  }

  fs::path dir_;
};

TEST_F(ReplayFolderTest, MissingFolderIsNotFound) {
  ReplayOptions options;
  options.dir = (dir_ / "absent").string();
  absl::StatusOr<std::unique_ptr<Source>> source = MakeReplaySource(options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(source.status().message().find("absent"), absl::string_view::npos)
      << source.status();
}

TEST_F(ReplayFolderTest, FolderWithoutJsonIsNotFound) {
  Write("notes.txt", "not a recording");
  absl::StatusOr<std::unique_ptr<Source>> source = Load();
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(source.status().message().find("no *.json"),
            absl::string_view::npos)
      << source.status();
}

TEST_F(ReplayFolderTest, MalformedFileIsNamed) {
  Write("good.json", RecordingJson(0, "2026-06-24T18:00:00Z",
                                   "2026-06-24T18:10:00Z", 1));
  Write("broken.json", R"({"seq": 1, "start": )");
  absl::StatusOr<std::unique_ptr<Source>> source = Load();
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(source.status().message().find("broken.json"),
            absl::string_view::npos)
      << source.status();
}

TEST_F(ReplayFolderTest, RepeatedSeqNamesBothFiles) {
  Write("a.json", RecordingJson(4, "2026-06-24T18:00:00Z",
                                "2026-06-24T18:10:00Z", 1));
  Write("b.json", RecordingJson(4, "2026-06-24T18:10:00Z",
                                "2026-06-24T18:20:00Z", 2));
  absl::StatusOr<std::unique_ptr<Source>> source = Load();
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(source.status().message().find("a.json"), absl::string_view::npos)
      << source.status();
  EXPECT_NE(source.status().message().find("b.json"), absl::string_view::npos)
      << source.status();
  EXPECT_NE(source.status().message().find("seq 4"), absl::string_view::npos)
      << source.status();
}

TEST_F(ReplayFolderTest, OrdersBySeqNotFileName) {
  Write("a.json", RecordingJson(2, "2026-06-24T18:10:00Z",
                                "2026-06-24T18:20:00Z", 20));
  Write("b.json", RecordingJson(1, "2026-06-24T18:00:00Z",
                                "2026-06-24T18:10:00Z", 10));
  Write("ignored.txt", "{}");
  absl::StatusOr<std::unique_ptr<Source>> source = Load();
  ASSERT_TRUE(source.ok()) << source.status();

  std::vector<uint64_t> values;
  while (std::optional<TickPlan> plan = (*source)->NextTick({})) {
    std::vector<Observation> observations;
    ASSERT_TRUE(harness::FetchAll(**source, plan->tasks[0], &observations).ok());
    ASSERT_EQ(observations.size(), 1u);
    values.push_back(observations[0].value);
  }
  EXPECT_EQ(values, (std::vector<uint64_t>{10, 20}));
}

}  // namespace
}  // namespace converge

// The remote write sink against a real VictoriaMetrics, and the test harness
// that runs it.

#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "converge/sinks.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/victoria_metrics.h"

namespace converge {
namespace {

using harness::ExportedSeries;
using harness::Subprocess;
using harness::VictoriaMetrics;

// 2026-06-24T18:59:00Z, a minute from the recorded Cloudflare fixtures: old
// enough that VictoriaMetrics' default one-month retention would drop it.
int64_t MinuteMs(int minute_offset) {
  const absl::Time time = absl::FromCivil(
      absl::CivilMinute(2026, 6, 24, 18, 59), absl::UTCTimeZone());
  return absl::ToUnixMillis(time + absl::Minutes(minute_offset));
}

Sample MakeSample(std::string_view name, std::vector<Label> labels,
                  int64_t timestamp_ms, uint64_t value) {
  absl::StatusOr<SeriesKey> key = SeriesKey::Make(name, std::move(labels));
  EXPECT_TRUE(key.ok()) << key.status();
  return Sample{*key, timestamp_ms, value, SampleCause::kStable};
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

class VictoriaMetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<VictoriaMetrics>> server =
        VictoriaMetrics::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::unique_ptr<Sink> OpenSink(absl::Duration timeout = absl::Seconds(10)) {
    absl::StatusOr<std::unique_ptr<Sink>> sink = MakeRemoteWriteSink(
        {.url = server_->write_url(), .timeout = timeout});
    EXPECT_TRUE(sink.ok()) << sink.status();
    if (!sink.ok()) return nullptr;
    const absl::Status opened = (*sink)->Open();
    EXPECT_TRUE(opened.ok()) << opened;
    return std::move(*sink);
  }

  // Flushes the server and exports the series whose name starts with
  // "converge_test_", keyed by their "zone" label.
  std::map<std::string, ExportedSeries> ExportByZone() {
    const absl::Status flushed = server_->ForceFlush();
    EXPECT_TRUE(flushed.ok()) << flushed;
    absl::StatusOr<std::vector<ExportedSeries>> exported =
        server_->Export("{__name__=~\"converge_test_.*\"}");
    EXPECT_TRUE(exported.ok()) << exported.status();
    std::map<std::string, ExportedSeries> by_zone;
    if (!exported.ok()) return by_zone;
    for (ExportedSeries& series : *exported) {
      const std::string zone = series.metric["zone"];
      by_zone.emplace(zone, std::move(series));
    }
    return by_zone;
  }

  std::unique_ptr<VictoriaMetrics> server_;
};

TEST_F(VictoriaMetricsTest, StoresPushedSamplesExactly) {
  std::unique_ptr<Sink> sink = OpenSink();
  ASSERT_NE(sink, nullptr);
  const std::vector<Sample> batch = {
      MakeSample("converge_test_requests_total",
                 {{"zone", "example.com"}, {"Country", "DE"}}, MinuteMs(0),
                 1234),
      MakeSample("converge_test_requests_total", {{"zone", "other.org"}},
                 MinuteMs(0), 7),
      MakeSample("converge_test_requests_total",
                 {{"zone", "example.com"}, {"Country", "DE"}}, MinuteMs(1),
                 1250),
  };

  const absl::Status pushed = sink->Push(batch);
  ASSERT_TRUE(pushed.ok()) << pushed;
  ASSERT_TRUE(sink->Close().ok());
  std::map<std::string, ExportedSeries> by_zone = ExportByZone();

  ASSERT_EQ(by_zone.size(), 2u);
  const ExportedSeries& example = by_zone["example.com"];
  EXPECT_EQ(example.metric,
            (std::map<std::string, std::string>{
                {"__name__", "converge_test_requests_total"},
                {"Country", "DE"},
                {"zone", "example.com"}}));
  EXPECT_EQ(example.values, (std::vector<double>{1234, 1250}));
  EXPECT_EQ(example.timestamps,
            (std::vector<int64_t>{1782327540000, 1782327600000}));

  const ExportedSeries& other = by_zone["other.org"];
  EXPECT_EQ(other.values, (std::vector<double>{7}));
  EXPECT_EQ(other.timestamps, (std::vector<int64_t>{1782327540000}));
}

TEST_F(VictoriaMetricsTest, RestartKeepsData) {
  std::unique_ptr<Sink> sink = OpenSink();
  ASSERT_NE(sink, nullptr);
  const std::vector<Sample> batch = {MakeSample(
      "converge_test_bytes_total", {{"zone", "a"}}, MinuteMs(-60), 99)};
  ASSERT_TRUE(sink->Push(batch).ok());
  ASSERT_TRUE(server_->ForceFlush().ok());

  const absl::Status restarted = server_->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  std::map<std::string, ExportedSeries> by_zone = ExportByZone();

  ASSERT_EQ(by_zone.size(), 1u);
  EXPECT_EQ(by_zone["a"].values, (std::vector<double>{99}));
  EXPECT_EQ(by_zone["a"].timestamps, (std::vector<int64_t>{MinuteMs(-60)}));
}

TEST_F(VictoriaMetricsTest, PausedServerTimesOutUntilResumed) {
  std::unique_ptr<Sink> sink = OpenSink(absl::Milliseconds(300));
  ASSERT_NE(sink, nullptr);
  const std::vector<Sample> batch = {
      MakeSample("converge_test_paused", {{"zone", "a"}}, MinuteMs(0), 1)};

  ASSERT_TRUE(server_->Pause().ok());
  const absl::Status while_paused = sink->Push(batch);
  ASSERT_TRUE(server_->Resume().ok());
  const absl::Status after_resume = sink->Push(batch);

  EXPECT_EQ(while_paused.code(), absl::StatusCode::kUnavailable)
      << while_paused;
  EXPECT_TRUE(after_resume.ok()) << after_resume;

  // The kernel had already queued the timed-out request, so the server
  // usually stores it after resuming as well: a retry after a timeout can
  // deliver a sample twice, and the export may hold it twice.
  const ExportedSeries series = ExportByZone()["a"];
  ASSERT_FALSE(series.timestamps.empty());
  for (size_t i = 0; i < series.timestamps.size(); ++i) {
    EXPECT_EQ(series.timestamps[i], MinuteMs(0));
    EXPECT_EQ(series.values[i], 1);
  }
}

// --- Subprocess ----------------------------------------------------------------

class SubprocessTest : public ::testing::Test {
 protected:
  static harness::SubprocessOptions Command(std::vector<std::string> argv) {
    harness::SubprocessOptions options;
    options.argv = std::move(argv);
    return options;
  }

  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "subprocess_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string dir_;
};

TEST_F(SubprocessTest, CapturesOutputAndExitCode) {
  harness::SubprocessOptions options = Command(
      {"sh", "-c", "echo out; echo err >&2; echo \"$CONVERGE_X\"; exit 3"});
  options.env = {{"CONVERGE_X", "from env"}};
  options.stdout_path = dir_ + "/out";
  options.stderr_path = dir_ + "/err";
  absl::StatusOr<std::unique_ptr<Subprocess>> child =
      Subprocess::Start(options);
  ASSERT_TRUE(child.ok()) << child.status();

  absl::StatusOr<int> status = (*child)->Wait(absl::Seconds(30));

  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << harness::DescribeWaitStatus(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(ReadFile(dir_ + "/out"), "out\nfrom env\n");
  EXPECT_EQ(ReadFile(dir_ + "/err"), "err\n");
}

TEST_F(SubprocessTest, WaitTimesOutAndDestructorKills) {
  absl::StatusOr<std::unique_ptr<Subprocess>> child =
      Subprocess::Start(Command({"sleep", "600"}));
  ASSERT_TRUE(child.ok()) << child.status();
  const pid_t pid = (*child)->pid();

  EXPECT_EQ((*child)->Wait(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  child->reset();

  // The child was reaped, so its pid no longer exists.
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(SubprocessTest, SignalEndsChild) {
  absl::StatusOr<std::unique_ptr<Subprocess>> child =
      Subprocess::Start(Command({"sleep", "600"}));
  ASSERT_TRUE(child.ok()) << child.status();

  ASSERT_TRUE((*child)->Signal(SIGTERM).ok());
  absl::StatusOr<int> status = (*child)->Wait(absl::Seconds(30));

  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFSIGNALED(*status)) << harness::DescribeWaitStatus(*status);
  EXPECT_EQ(WTERMSIG(*status), SIGTERM);
  EXPECT_EQ((*child)->Signal(SIGTERM).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SubprocessTest, MissingExecutableIsNotFound) {
  absl::StatusOr<std::unique_ptr<Subprocess>> child =
      Subprocess::Start(Command({"converge-no-such-program"}));
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(child.status().message().find("converge-no-such-program"),
            std::string::npos);
}

}  // namespace
}  // namespace converge

// Tests of the convergence report: the analysis on a hand-made observation
// stream with known settle ages and pushes, the SVG rendering, and the
// converge-report binary on recorded fixtures, on a sim run and on invalid
// flags.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "report/convergence.h"
#include "report/report_tables.h"
#include "report/svg_report.h"
#include "tests/testing/exporter_harness.h"
#include "tests/testing/subprocess.h"

namespace converge {
namespace {

namespace fs = std::filesystem;
using harness::ReadFile;
using harness::Subprocess;
using harness::SubprocessOptions;

const char kFixtures[] =
    CONVERGE_SOURCE_DIR "/../shared/fixtures/cloudflare-recorded";

constexpr int64_t kMinuteMs = 60'000;
// 2026-06-24T19:00:00Z, a bucket start.
constexpr int64_t kBucket = 1'782'327'600'000;

SeriesKey Key(const std::string& zone) {
  absl::StatusOr<SeriesKey> key = SeriesKey::Make("requests", {{"zone", zone}});
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

// The tick at `age_seconds` after kBucket.
absl::Time TickAt(int64_t age_seconds) {
  return absl::FromUnixMillis(kBucket) + absl::Seconds(age_seconds);
}

const ThresholdResult* FindThreshold(const ConvergenceReport& report,
                                     int threshold) {
  for (const ThresholdResult& result : report.thresholds) {
    if (result.threshold == threshold) return &result;
  }
  return nullptr;
}

// Three series of bucket kBucket, observed every 30 s from age 1:00 to 4:00:
//   a: 10, 40, 90, 100, 100, 100, 100  (settles at 2:30)
//   b: 5 in every observation          (never changes)
//   c: 1, 2, 2, 2, 2, 1, 1             (settles at 3:30, a down revision)
// then one tick at 4:30 that observes only series a of the next bucket, so
// that bucket is still open at the end.
ConvergenceReport AnalyzeHandMadeStream(const AnalysisOptions& options) {
  absl::StatusOr<std::unique_ptr<ConvergenceAnalyzer>> analyzer =
      ConvergenceAnalyzer::Create(options);
  EXPECT_TRUE(analyzer.ok()) << analyzer.status();
  if (!analyzer.ok()) return {};

  const std::vector<uint64_t> a = {10, 40, 90, 100, 100, 100, 100};
  const std::vector<uint64_t> b = {5, 5, 5, 5, 5, 5, 5};
  const std::vector<uint64_t> c = {1, 2, 2, 2, 2, 1, 1};
  for (size_t i = 0; i < a.size(); ++i) {
    const std::vector<Observation> tick = {
        {Key("a"), kBucket, a[i]},
        {Key("b"), kBucket, b[i]},
        {Key("c"), kBucket, c[i]},
    };
    (*analyzer)->AddTick(TickAt(60 + 30 * static_cast<int64_t>(i)), tick);
  }
  const std::vector<Observation> last = {{Key("a"), kBucket + kMinuteMs, 7}};
  (*analyzer)->AddTick(TickAt(270), last);
  return (*analyzer)->Finish();
}

AnalysisOptions Thresholds(std::vector<int> thresholds) {
  AnalysisOptions options;
  options.thresholds = std::move(thresholds);
  return options;
}

TEST(ConvergenceAnalyzerTest, CountsInputSize) {
  const ConvergenceReport report = AnalyzeHandMadeStream(Thresholds({1, 3}));
  EXPECT_EQ(report.ticks, 8u);
  EXPECT_EQ(report.observations, 22u);
  EXPECT_EQ(report.series, 3u);
  EXPECT_EQ(report.buckets, 4u);
}

TEST(ConvergenceAnalyzerTest, SettleAgesOfChangedBuckets) {
  const SettleResult settle =
      AnalyzeHandMadeStream(Thresholds({1, 3})).settle;
  EXPECT_EQ(settle.counted, 2u);      // a and c of the first bucket
  EXPECT_EQ(settle.unchanged, 1u);    // b
  EXPECT_EQ(settle.open_at_end, 1u);  // a of the second bucket

  const std::vector<double> expected_by_minute = {0, 0, 0, 0.5, 1};
  EXPECT_EQ(settle.share_by_minute, expected_by_minute);
  const std::vector<std::pair<double, double>> expected_steps = {{2.5, 0.5},
                                                                 {3.5, 1}};
  EXPECT_EQ(settle.cdf_steps, expected_steps);
  EXPECT_DOUBLE_EQ(settle.mean_minutes, 3.0);
  EXPECT_DOUBLE_EQ(settle.median_minutes, 2.5);
  EXPECT_DOUBLE_EQ(settle.p90_minutes, 3.5);
  EXPECT_DOUBLE_EQ(settle.max_minutes, 3.5);
}

TEST(ConvergenceAnalyzerTest, EagerThresholdPushesEveryChange) {
  const ConvergenceReport report = AnalyzeHandMadeStream(Thresholds({1, 3}));
  const ThresholdResult* eager = FindThreshold(report, 1);
  ASSERT_NE(eager, nullptr);

  // a: 10, 40, 90, 100; b: 5; c: 1, 2, 1; the open bucket: 7.
  EXPECT_EQ(eager->stats.samples_stable, 9u);
  EXPECT_EQ(eager->stats.samples_forced, 0u);
  EXPECT_EQ(eager->stats.samples_flushed, 0u);
  EXPECT_EQ(eager->stats.post_stabilization_updates, 5u);
  EXPECT_EQ(eager->stats.down_revisions, 1u);
  EXPECT_DOUBLE_EQ(eager->pushes_per_bucket, 9.0 / 4);
  EXPECT_EQ(eager->buckets_pushed, 4u);
  EXPECT_EQ(eager->buckets_repushed, 2u);
  EXPECT_EQ(eager->first_push_last_value, 3u);  // all but a's 10

  // Three first pushes at 1:00, the open bucket's at 4:30 - 1:00.
  EXPECT_DOUBLE_EQ(eager->first_push_age_mean_minutes, (1 + 1 + 1 + 3.5) / 4);
  EXPECT_DOUBLE_EQ(eager->first_push_age_p90_minutes, 3.5);
}

TEST(ConvergenceAnalyzerTest, ThresholdThreeWaitsForRepeats) {
  const ConvergenceReport report = AnalyzeHandMadeStream(Thresholds({1, 3}));
  const ThresholdResult* three = FindThreshold(report, 3);
  ASSERT_NE(three, nullptr);

  // Stable: a's 100 at 3:30, b's 5 at 2:00, c's 2 at 2:30. Flushed at the
  // end: c's later 1 (seen twice) and the open bucket's 7 (seen once).
  EXPECT_EQ(three->stats.samples_stable, 3u);
  EXPECT_EQ(three->stats.samples_forced, 0u);
  EXPECT_EQ(three->stats.samples_flushed, 2u);
  EXPECT_EQ(three->stats.post_stabilization_updates, 1u);
  EXPECT_EQ(three->stats.down_revisions, 1u);
  EXPECT_DOUBLE_EQ(three->pushes_per_bucket, 5.0 / 4);
  EXPECT_EQ(three->buckets_repushed, 1u);       // c
  EXPECT_EQ(three->first_push_last_value, 3u);  // all but c's 2

  EXPECT_DOUBLE_EQ(three->first_push_age_mean_minutes,
                   (3.5 + 2 + 2.5 + 3.5) / 4);
  EXPECT_DOUBLE_EQ(three->first_push_age_p90_minutes, 3.5);
}

TEST(ConvergenceAnalyzerTest, ForcedAtWindowTtlAndLateDropped) {
  AnalysisOptions options = Thresholds({3});
  options.window_ttl = absl::Minutes(2);
  options.lookback = absl::Minutes(1);
  absl::StatusOr<std::unique_ptr<ConvergenceAnalyzer>> analyzer =
      ConvergenceAnalyzer::Create(options);
  ASSERT_TRUE(analyzer.ok()) << analyzer.status();

  // Seen twice, then the window closes at 2:00 and a third value is late.
  const std::vector<Observation> tick = {{Key("a"), kBucket, 10}};
  (*analyzer)->AddTick(TickAt(60), tick);
  (*analyzer)->AddTick(TickAt(90), tick);
  (*analyzer)->AddTick(TickAt(120), {});
  (*analyzer)->AddTick(TickAt(150), tick);
  const ConvergenceReport report = (*analyzer)->Finish();

  ASSERT_EQ(report.thresholds.size(), 1u);
  const ThresholdResult& result = report.thresholds[0];
  EXPECT_EQ(result.stats.samples_forced, 1u);
  EXPECT_EQ(result.stats.samples_stable, 0u);
  EXPECT_EQ(result.stats.late_dropped, 1u);
  EXPECT_DOUBLE_EQ(result.first_push_age_mean_minutes, 2.0);
}

TEST(ConvergenceAnalyzerTest, EmptyInputReportsZeros) {
  absl::StatusOr<std::unique_ptr<ConvergenceAnalyzer>> analyzer =
      ConvergenceAnalyzer::Create(AnalysisOptions());
  ASSERT_TRUE(analyzer.ok()) << analyzer.status();
  const ConvergenceReport report = (*analyzer)->Finish();
  EXPECT_EQ(report.buckets, 0u);
  EXPECT_TRUE(report.settle.share_by_minute.empty());
  ASSERT_EQ(report.thresholds.size(), 6u);
  EXPECT_EQ(report.thresholds[0].pushes_per_bucket, 0);

  // Rendering must not divide by zero or draw NaN coordinates.
  const std::string svg = RenderConvergenceSvg(report);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(AnalysisOptionsTest, RejectsInvalidThresholdsAndTtl) {
  EXPECT_TRUE(ValidateAnalysisOptions(AnalysisOptions()).ok());
  EXPECT_FALSE(ValidateAnalysisOptions(Thresholds({})).ok());
  EXPECT_FALSE(ValidateAnalysisOptions(Thresholds({0, 1})).ok());
  EXPECT_FALSE(ValidateAnalysisOptions(Thresholds({3, 2})).ok());
  EXPECT_FALSE(ValidateAnalysisOptions(Thresholds({2, 2})).ok());
  EXPECT_FALSE(ValidateAnalysisOptions(
                   Thresholds({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}))
                   .ok());

  AnalysisOptions short_ttl;
  short_ttl.window_ttl = absl::Minutes(10);
  short_ttl.lookback = absl::Minutes(10);
  const absl::Status status = ValidateAnalysisOptions(short_ttl);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

// --- Rendering and the binary -----------------------------------------------

class ReportOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = harness::MakeTestDir("converge-report-test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct RunResult {
    int exit_code = -1;  // -1: did not exit normally in time
    std::string out;
    std::string err;
  };

  // Runs `argv` with its output captured in the test folder.
  RunResult RunProgram(const std::vector<std::string>& argv,
                       const std::string& tag) {
    SubprocessOptions options;
    options.argv = argv;
    options.stdout_path = (dir_ / (tag + ".out")).string();
    options.stderr_path = (dir_ / (tag + ".err")).string();
    absl::StatusOr<std::unique_ptr<Subprocess>> process =
        Subprocess::Start(options);
    RunResult result;
    if (!process.ok()) {
      ADD_FAILURE() << "cannot start " << argv[0] << ": " << process.status();
      return result;
    }
    absl::StatusOr<int> status = (*process)->Wait(absl::Minutes(2));
    if (status.ok() && WIFEXITED(*status)) {
      result.exit_code = WEXITSTATUS(*status);
    }
    result.out = ReadFile(options.stdout_path);
    result.err = ReadFile(options.stderr_path);
    return result;
  }

  RunResult RunReport(std::vector<std::string> args, const std::string& tag) {
    args.insert(args.begin(), CONVERGE_REPORT_PATH);
    return RunProgram(args, tag);
  }

  // Parses `path` with Python's XML parser (Debian's /usr/bin/python3), so a
  // malformed document fails.
  void ExpectWellFormedXml(const fs::path& path) {
    const RunResult result = RunProgram(
        {"/usr/bin/python3", "-c",
         "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])",
         path.string()},
        "xml-check");
    EXPECT_EQ(result.exit_code, 0) << path << " is not well-formed XML:\n"
                                   << result.err;
  }

  // Converts the SVG to PNG with rsvg-convert when it is installed, so a
  // document a real renderer rejects fails the test. Skips that step, with a
  // message, where rsvg-convert is missing.
  void ExpectRendersToPng(const fs::path& svg) {
    absl::StatusOr<std::string> rsvg = harness::FindExecutable("rsvg-convert");
    if (!rsvg.ok()) {
      std::cerr << "rsvg-convert not installed (Debian package librsvg2-bin); "
                   "skipping the PNG rendering check\n";
      return;
    }
    const fs::path png = dir_ / (svg.stem().string() + ".png");
    const RunResult result =
        RunProgram({*rsvg, "-o", png.string(), svg.string()}, "rsvg");
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_GT(fs::exists(png) ? fs::file_size(png) : 0, 1000u);
  }

  // Reads `table,key,metric,value` rows into table/key/metric -> value.
  static std::map<std::string, double> ReadCsv(const fs::path& path) {
    std::map<std::string, double> values;
    const std::string text = ReadFile(path);
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    EXPECT_FALSE(lines.empty());
    if (lines.empty()) return values;
    EXPECT_EQ(lines[0], "table,key,metric,value");
    for (size_t i = 1; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      std::vector<std::string> fields = absl::StrSplit(lines[i], ',');
      EXPECT_EQ(fields.size(), 4u) << lines[i];
      if (fields.size() != 4) continue;
      double value = 0;
      EXPECT_TRUE(absl::SimpleAtod(fields[3], &value)) << lines[i];
      values[absl::StrCat(fields[0], "/", fields[1], "/", fields[2])] = value;
    }
    return values;
  }

  // Checks what every input's report satisfies.
  void ExpectConsistentReport(const RunResult& result, const fs::path& svg,
                              const fs::path& csv) {
    ASSERT_EQ(result.exit_code, 0) << result.err;
    ASSERT_TRUE(fs::exists(svg));
    ExpectWellFormedXml(svg);
    const std::string text = ReadFile(svg);
    EXPECT_NE(text.find(kSettleChartTitle), std::string::npos);
    EXPECT_NE(text.find(kThresholdChartTitle), std::string::npos);
    ExpectRendersToPng(svg);

    EXPECT_NE(result.out.find("threshold"), std::string::npos) << result.out;
    const std::map<std::string, double> values = ReadCsv(csv);
    const double buckets = values.at("summary//buckets");
    EXPECT_GT(buckets, 0);
    EXPECT_EQ(values.at("summary//settle_counted") +
                  values.at("summary//settle_unchanged") +
                  values.at("summary//settle_open_at_end"),
              buckets);
    for (int threshold = 1; threshold <= 6; ++threshold) {
      // Every bucket is pushed at least once: stable, forced or flushed.
      const std::string prefix = absl::StrCat("threshold/", threshold, "/");
      EXPECT_EQ(values.at(prefix + "buckets_pushed"), buckets) << threshold;
      EXPECT_GE(values.at(prefix + "pushes_per_bucket"), 1) << threshold;
    }
  }

  fs::path dir_;
};

TEST_F(ReportOutputTest, SvgEscapesInputAndIsWellFormed) {
  ConvergenceReport report = AnalyzeHandMadeStream(Thresholds({1, 3}));
  report.input = "replay of <dir & \"quoted\">";
  const std::string svg = RenderConvergenceSvg(report);
  EXPECT_NE(svg.find("replay of &lt;dir &amp; &quot;quoted&quot;&gt;"),
            std::string::npos);
  EXPECT_NE(svg.find(kSettleChartTitle), std::string::npos);
  EXPECT_NE(svg.find(kThresholdChartTitle), std::string::npos);

  const fs::path path = dir_ / "hand-made.svg";
  std::ofstream(path) << svg;
  ExpectWellFormedXml(path);
}

TEST_F(ReportOutputTest, TablesListEveryThreshold) {
  const ConvergenceReport report = AnalyzeHandMadeStream(Thresholds({1, 3}));
  const std::string table = FormatReportTable(report);
  EXPECT_NE(table.find("mean 3.00, median 2.50, p90 3.50"), std::string::npos)
      << table;
  const std::string csv = FormatReportCsv(report);
  EXPECT_NE(csv.find("threshold,1,samples_stable,9\n"), std::string::npos)
      << csv;
  EXPECT_NE(csv.find("threshold,3,samples_flushed,2\n"), std::string::npos)
      << csv;
  EXPECT_NE(csv.find("settled_by_age,3,share,0.5\n"), std::string::npos)
      << csv;
}

TEST_F(ReportOutputTest, ReportsRecordedFixtures) {
  if (!fs::exists(kFixtures)) {
    GTEST_SKIP() << "recorded fixtures not found at " << kFixtures
                 << "; they live in ../shared beside the clone";
  }
  const fs::path svg = dir_ / "fixtures.svg";
  const fs::path csv = dir_ / "fixtures.csv";
  const RunResult result = RunReport(
      {absl::StrCat("--replay-dir=", kFixtures), "--output=" + svg.string(),
       "--output-csv=" + csv.string()},
      "fixtures");
  ExpectConsistentReport(result, svg, csv);
}

TEST_F(ReportOutputTest, ReportsSimRun) {
  const fs::path svg = dir_ / "sim.svg";
  const fs::path csv = dir_ / "sim.csv";
  const RunResult result = RunReport(
      {"--sim-zones=2", "--sim-series-per-zone=3", "--sim-duration=30m",
       "--sim-start=2026-06-01T00:00:00Z", "--output=" + svg.string(),
       "--output-csv=" + csv.string()},
      "sim");
  ExpectConsistentReport(result, svg, csv);

  // The sim shows a bucket's final value from four minutes of age on, and
  // revises about one bucket in a thousand later, so the median settles at 4.
  const std::map<std::string, double> values = ReadCsv(csv);
  EXPECT_EQ(values.at("summary//settle_age_median_minutes"), 4);
  EXPECT_GT(values.at("summary//settle_counted"), 0);
  // Eager pushing re-pushes each partial value; threshold 3 waits for them.
  EXPECT_GT(values.at("threshold/1/pushes_per_bucket"), 3);
  EXPECT_LT(values.at("threshold/3/pushes_per_bucket"), 1.1);
}

TEST_F(ReportOutputTest, InvalidFlagsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;  // part of the error message
  };
  const std::vector<Case> cases = {
      {{"--thresholds=0,2"}, "invalid --thresholds=0,2: 0 is out of range"},
      {{"--thresholds=1,x"}, "\"x\" is not an integer"},
      {{"--thresholds=2,2"}, "2 is listed twice"},
      {{"--window-ttl=5m"}, "invalid --window-ttl=5m: must be greater than "
                            "--lookback=10m"},
      {{"--sim-zones=0"}, "invalid --sim-zones=0: must be an integer from 1"},
      {{"--sim-start=yesterday"}, "invalid --sim-start=yesterday"},
      {{"--replay-dir=/tmp", "--sim-seed=3"},
       "invalid --sim-seed with --replay-dir"},
      {{"--output="}, "missing --output"},
      {{"--sim-duration=soon"}, "invalid --sim-duration=soon"},
      {{"--no-such-flag=1"}, "unknown flag --no-such-flag"},
      {{"stray"}, "unexpected argument \"stray\""},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const RunResult result =
        RunReport(cases[i].args, absl::StrCat("invalid-", i));
    EXPECT_EQ(result.exit_code, 2) << cases[i].args[0];
    EXPECT_NE(result.err.find(cases[i].expected), std::string::npos)
        << cases[i].args[0] << ": " << result.err;
  }
}

TEST_F(ReportOutputTest, MissingReplayFolderExitsOne) {
  const RunResult result = RunReport(
      {"--replay-dir=" + (dir_ / "missing").string(),
       "--output=" + (dir_ / "report.svg").string()},
      "missing");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("not found"), std::string::npos) << result.err;
  EXPECT_FALSE(fs::exists(dir_ / "report.svg"));
}

}  // namespace
}  // namespace converge

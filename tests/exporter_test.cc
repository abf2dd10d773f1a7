// End-to-end tests of the converge-exporter binary: flag errors, output that
// does not depend on --shards or --fetchers, delivery into a real
// VictoriaMetrics, and shutdown on SIGTERM.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <tuple>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/victoria_metrics.h"

namespace converge {
namespace {

namespace fs = std::filesystem;
using harness::Subprocess;
using harness::SubprocessOptions;
using harness::VictoriaMetrics;

const char kFixtures[] = CONVERGE_SOURCE_DIR "/../shared/fixtures/cloudflare-recorded";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> SortedLines(const fs::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Reads `key=N` from the exporter's summary line.
uint64_t SummaryField(const std::string& output, const std::string& key) {
  const size_t line_start = output.rfind("converge summary:");
  if (line_start == std::string::npos) return UINT64_MAX;
  const std::string needle = " " + key + "=";
  const size_t at = output.find(needle, line_start);
  if (at == std::string::npos) return UINT64_MAX;
  const size_t begin = at + needle.size();
  const size_t end = output.find_first_not_of("0123456789", begin);
  uint64_t value = 0;
  if (!absl::SimpleAtoi(output.substr(begin, end - begin), &value)) {
    return UINT64_MAX;
  }
  return value;
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("converge-exporter-test-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()
                            ->current_test_info()
                            ->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Subprocess> Start(std::vector<std::string> args,
                                    const std::string& tag) {
    SubprocessOptions options;
    options.argv.push_back(CONVERGE_EXPORTER_PATH);
    for (std::string& arg : args) options.argv.push_back(std::move(arg));
    options.stdout_path = (dir_ / (tag + ".out")).string();
    options.stderr_path = (dir_ / (tag + ".err")).string();
    absl::StatusOr<std::unique_ptr<Subprocess>> process =
        Subprocess::Start(options);
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? std::move(*process) : nullptr;
  }

  RunResult Finish(Subprocess& process, const std::string& tag,
                   absl::Duration timeout = absl::Minutes(5)) {
    RunResult result;
    absl::StatusOr<int> status = process.Wait(timeout);
    EXPECT_TRUE(status.ok()) << tag << ": " << status.status();
    if (status.ok() && WIFEXITED(*status)) {
      result.exit_code = WEXITSTATUS(*status);
    }
    result.out = ReadFile(dir_ / (tag + ".out"));
    result.err = ReadFile(dir_ / (tag + ".err"));
    return result;
  }

  RunResult Run(std::vector<std::string> args, const std::string& tag) {
    std::unique_ptr<Subprocess> process = Start(std::move(args), tag);
    if (process == nullptr) return {};
    return Finish(*process, tag);
  }

  // Runs the exporter into a file sink and returns the sorted lines.
  std::vector<std::string> RunToFile(std::vector<std::string> args,
                                     const std::string& tag) {
    const fs::path output = dir_ / (tag + ".jsonl");
    args.push_back("--sink=file");
    args.push_back("--sink-file=" + output.string());
    RunResult result = Run(std::move(args), tag);
    EXPECT_EQ(result.exit_code, 0) << tag << "\n" << result.err;
    return SortedLines(output);
  }

  bool HaveFixtures() { return fs::is_directory(kFixtures); }

  fs::path dir_;
};

#define SKIP_WITHOUT_FIXTURES()                                       \
  if (!HaveFixtures()) {                                              \
    GTEST_SKIP() << "recorded fixtures not found at " << kFixtures    \
                 << "; they live in shared/fixtures beside the clone"; \
  }

// --- Flags ------------------------------------------------------------------

TEST_F(ExporterTest, HelpListsFlagsWithDefaults) {
  RunResult result = Run({"--help"}, "help");
  EXPECT_EQ(result.exit_code, 0);
  for (const char* flag :
       {"--source", "--replay-dir", "--sim-zones", "--sim-series-per-zone",
        "--sim-seed", "--sim-duration", "--sink", "--sink-file", "--sink-url",
        "--shards", "--fetchers", "--threshold", "--window-ttl", "--lookback",
        "--poll-interval", "--max-backfill", "--backfill-chunk",
        "--backfill-calls-per-tick", "--shutdown-timeout"}) {
    EXPECT_NE(result.out.find(absl::StrCat(flag, " (default: ")),
              std::string::npos)
        << flag;
  }
  EXPECT_NE(result.out.find("--window-ttl (default: 15m)"), std::string::npos);
}

struct InvalidFlagCase {
  std::vector<std::string> args;
  std::vector<std::string> expected;  // substrings of the error message
};

TEST_F(ExporterTest, InvalidFlagsExitTwoWithClearMessage) {
  const std::vector<InvalidFlagCase> cases = {
      {{"--threshold=0"}, {"--threshold=0", "from 1 to 65535"}},
      {{"--threshold=abc"}, {"--threshold=abc", "--help"}},
      {{"--shards=0"}, {"--shards=0", "from 1 to 256"}},
      {{"--fetchers=-3"}, {"--fetchers=-3", "from 1 to 256"}},
      {{"--window-ttl=5m"}, {"--window-ttl=5m", "--lookback=10m"}},
      {{"--lookback=soon"}, {"--lookback=soon"}},
      {{"--source=ftp"}, {"--source=ftp", "sim, replay"}},
      {{"--sink=kafka"}, {"--sink=kafka", "file, remote-write, null"}},
      {{"--source=replay"}, {"--replay-dir"}},
      {{"--sink=remote-write"}, {"--sink-url"}},
      {{"--no-such-flag=1"}, {"unknown flag --no-such-flag", "--help"}},
      {{"--sim-start=yesterday"}, {"--sim-start=yesterday", "RFC 3339"}},
      {{"stray"}, {"stray"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const InvalidFlagCase& test_case = cases[i];
    RunResult result = Run(test_case.args, absl::StrCat("invalid", i));
    EXPECT_EQ(result.exit_code, 2) << test_case.args[0];
    for (const std::string& expected : test_case.expected) {
      EXPECT_NE(result.err.find(expected), std::string::npos)
          << test_case.args[0] << " should mention " << expected
          << "; stderr: " << result.err;
    }
  }
}

TEST_F(ExporterTest, MissingReplayFolderFailsClearly) {
  RunResult result = Run({"--source=replay", "--replay-dir=/nonexistent/rec",
                          "--sink=null"},
                         "missing");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/nonexistent/rec"), std::string::npos)
      << result.err;
}

// --- Determinism ------------------------------------------------------------

TEST_F(ExporterTest, ReplaySameForAnyShardsAndFetchers) {
  SKIP_WITHOUT_FIXTURES();
  for (const char* threshold : {"--threshold=3", "--threshold=1"}) {
    SCOPED_TRACE(threshold);
    std::vector<std::string> reference;
    for (int shards : {1, 2, 4, 7}) {
      for (int fetchers : {1, 3}) {
        std::vector<std::string> lines = RunToFile(
            {"--source=replay", absl::StrCat("--replay-dir=", kFixtures),
             threshold, absl::StrCat("--shards=", shards),
             absl::StrCat("--fetchers=", fetchers)},
            absl::StrCat("replay-", shards, "-", fetchers));
        if (reference.empty()) {
          reference = lines;
          ASSERT_FALSE(reference.empty());
        } else {
          EXPECT_EQ(lines, reference)
              << "shards=" << shards << " fetchers=" << fetchers;
        }
      }
    }
  }
}

TEST_F(ExporterTest, ReplayEmitsEveryRecordedValueOnce) {
  SKIP_WITHOUT_FIXTURES();
  // Every (series, bucket) appears once in the recording, so each comes out
  // exactly once: at the final flush (threshold 3) or at once (threshold 1).
  size_t recorded = 0;
  for (const auto& entry : fs::directory_iterator(kFixtures)) {
    const std::string text = ReadFile(entry.path());
    for (size_t at = text.find("\"bucket\""); at != std::string::npos;
         at = text.find("\"bucket\"", at + 1)) {
      ++recorded;
    }
  }
  ASSERT_GT(recorded, 0u);
  for (const char* threshold : {"--threshold=3", "--threshold=1"}) {
    std::vector<std::string> lines =
        RunToFile({"--source=replay", absl::StrCat("--replay-dir=", kFixtures),
                   threshold},
                  absl::StrCat("once-", threshold + 2));
    EXPECT_EQ(lines.size(), recorded) << threshold;
  }
}

TEST_F(ExporterTest, SimSameForAnyShardsAndFetchers) {
  const std::vector<std::string> base = {
      "--source=sim",          "--sim-zones=1000",
      "--sim-series-per-zone=2", "--sim-duration=6m",
      "--sim-start=2026-06-01T00:00:00Z", "--sim-seed=7",
      "--max-backfill=20m",    "--backfill-calls-per-tick=50",
  };
  std::vector<std::string> reference;
  for (int shards : {1, 2, 4, 7}) {
    for (int fetchers : {1, 3}) {
      std::vector<std::string> args = base;
      args.push_back(absl::StrCat("--shards=", shards));
      args.push_back(absl::StrCat("--fetchers=", fetchers));
      std::vector<std::string> lines =
          RunToFile(args, absl::StrCat("sim-", shards, "-", fetchers));
      if (reference.empty()) {
        reference = lines;
        ASSERT_GT(reference.size(), 1000u);
      } else {
        ASSERT_EQ(lines.size(), reference.size())
            << "shards=" << shards << " fetchers=" << fetchers;
        EXPECT_TRUE(lines == reference)
            << "shards=" << shards << " fetchers=" << fetchers;
      }
    }
  }
}

// --- VictoriaMetrics --------------------------------------------------------

// Parses one file-sink line into "series|timestamp_ms" -> value, with the
// series written as sorted name=value pairs like the export below.
struct StoredPoint {
  std::string series;
  int64_t timestamp_ms;
  double value;
  bool operator<(const StoredPoint& other) const {
    return std::tie(series, timestamp_ms, value) <
           std::tie(other.series, other.timestamp_ms, other.value);
  }
  bool operator==(const StoredPoint& other) const {
    return series == other.series && timestamp_ms == other.timestamp_ms &&
           value == other.value;
  }
};

std::string SeriesText(const std::map<std::string, std::string>& labels) {
  std::string text;
  for (const auto& [name, value] : labels) {
    absl::StrAppend(&text, name, "=", value, ";");
  }
  return text;
}

TEST_F(ExporterTest, ReplayIntoVictoriaMetricsMatchesFileSink) {
  SKIP_WITHOUT_FIXTURES();
  absl::StatusOr<std::unique_ptr<VictoriaMetrics>> vm =
      VictoriaMetrics::Start();
  ASSERT_TRUE(vm.ok()) << vm.status();

  // Remote write into VictoriaMetrics.
  RunResult pushed = Run({"--source=replay",
                          absl::StrCat("--replay-dir=", kFixtures),
                          "--sink=remote-write",
                          absl::StrCat("--sink-url=", (*vm)->write_url()),
                          "--shards=3", "--fetchers=2"},
                         "vm-push");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  std::cout << "exporter summary (replay into VictoriaMetrics): "
            << pushed.err.substr(pushed.err.rfind("converge summary:"));
  EXPECT_EQ(SummaryField(pushed.err, "undelivered"), 0u);
  EXPECT_EQ(SummaryField(pushed.err, "rejected"), 0u);

  // The same input into the file sink.
  const fs::path file = dir_ / "vm-file.jsonl";
  RunResult written = Run({"--source=replay",
                           absl::StrCat("--replay-dir=", kFixtures),
                           "--sink=file", "--sink-file=" + file.string()},
                          "vm-file");
  ASSERT_EQ(written.exit_code, 0) << written.err;

  // Expected points from the file sink's JSON lines.
  std::vector<StoredPoint> expected;
  {
    simdjson::ondemand::parser parser;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      simdjson::padded_string padded(line);
      simdjson::ondemand::document doc = parser.iterate(padded);
      std::map<std::string, std::string> labels;
      labels["__name__"] = std::string(std::string_view(doc["name"]));
      for (auto field : doc["labels"].get_object()) {
        labels[std::string(std::string_view(field.unescaped_key()))] =
            std::string(std::string_view(field.value()));
      }
      const uint64_t value = doc["value"].get_uint64();
      const int64_t timestamp_ms = doc["timestamp_ms"].get_int64();
      expected.push_back(StoredPoint{SeriesText(labels), timestamp_ms,
                                     static_cast<double>(value)});
    }
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_FALSE(expected.empty());

  // What VictoriaMetrics stored.
  ASSERT_TRUE((*vm)->ForceFlush().ok());
  absl::StatusOr<std::vector<harness::ExportedSeries>> exported =
      (*vm)->Export("{__name__=~\"cloudflare_.*\"}");
  ASSERT_TRUE(exported.ok()) << exported.status();
  std::vector<StoredPoint> stored;
  for (const harness::ExportedSeries& series : *exported) {
    ASSERT_EQ(series.values.size(), series.timestamps.size());
    for (size_t i = 0; i < series.values.size(); ++i) {
      stored.push_back(StoredPoint{SeriesText(series.metric),
                                   series.timestamps[i], series.values[i]});
    }
  }
  std::sort(stored.begin(), stored.end());

  ASSERT_EQ(stored.size(), expected.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].series, expected[i].series) << i;
    EXPECT_EQ(stored[i].timestamp_ms, expected[i].timestamp_ms) << i;
    EXPECT_EQ(stored[i].value, expected[i].value) << i;
  }
}

// --- Shutdown ---------------------------------------------------------------

TEST_F(ExporterTest, SigtermMidRunFlushesEverythingAndExitsZero) {
  const fs::path output = dir_ / "sigterm.jsonl";
  std::unique_ptr<Subprocess> process = Start(
      {"--source=sim", "--sim-zones=300", "--sim-series-per-zone=10",
       "--sim-duration=100000h", "--sim-start=2026-06-01T00:00:00Z",
       "--shards=3", "--fetchers=2", "--shutdown-timeout=20s", "--sink=file",
       "--sink-file=" + output.string()},
      "sigterm");
  ASSERT_NE(process, nullptr);

  // Wait (bounded) until samples are flowing, then stop the run.
  for (int i = 0; i < 600; ++i) {
    std::error_code error;
    if (fs::exists(output, error) && fs::file_size(output, error) > 100'000) {
      break;
    }
    ASSERT_FALSE(process->Poll().has_value()) << "exporter exited early";
    usleep(50'000);
  }
  ASSERT_TRUE(process->Signal(SIGTERM).ok());
  RunResult result = Finish(*process, "sigterm", absl::Seconds(60));

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("received SIGTERM"), std::string::npos);
  const uint64_t emitted = SummaryField(result.err, "samples");
  ASSERT_NE(emitted, UINT64_MAX) << result.err;
  EXPECT_GT(emitted, 0u);
  EXPECT_EQ(SummaryField(result.err, "delivered"), emitted);
  EXPECT_EQ(SummaryField(result.err, "undelivered"), 0u);
  EXPECT_EQ(SortedLines(output).size(), emitted);
}

}  // namespace
}  // namespace converge

// End-to-end tests of the converge-exporter binary: flag errors, output that
// does not depend on --shards or --fetchers, delivery into a real
// VictoriaMetrics, and shutdown on SIGTERM.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/exporter_harness.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/victoria_metrics.h"

namespace converge {
namespace {

namespace fs = std::filesystem;
using harness::Subprocess;
using harness::SubprocessOptions;
using harness::VictoriaMetrics;
using RunResult = harness::ExporterResult;
using harness::ReadFile;
using harness::SortedLines;
using harness::SummaryField;

const char kFixtures[] = CONVERGE_SOURCE_DIR "/../shared/fixtures/cloudflare-recorded";

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = harness::MakeTestDir("converge-exporter-test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Subprocess> Start(const std::vector<std::string>& args,
                                    const std::string& tag) {
    absl::StatusOr<std::unique_ptr<Subprocess>> process =
        Harness().Start(args, tag);
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? std::move(*process) : nullptr;
  }

  RunResult Finish(Subprocess& process, const std::string& tag,
                   absl::Duration timeout = absl::Minutes(5)) {
    return Harness().Finish(process, tag, timeout);
  }

  RunResult Run(const std::vector<std::string>& args, const std::string& tag) {
    return Harness().Run(args, tag);
  }

  harness::ExporterHarness Harness() const {
    return harness::ExporterHarness(CONVERGE_EXPORTER_PATH, dir_);
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

  // Every point the file sink wrote, and nothing else, is stored.
  absl::StatusOr<std::set<harness::Point>> expected =
      harness::FileSinkPoints(file);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_FALSE(expected->empty());
  ASSERT_TRUE((*vm)->ForceFlush().ok());
  absl::StatusOr<std::vector<harness::ExportedSeries>> exported =
      (*vm)->Export("{__name__=~\"cloudflare_.*\"}");
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(harness::ExportedPoints(*exported), *expected);
  EXPECT_EQ(SummaryField(pushed.err, "delivered"), expected->size());
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

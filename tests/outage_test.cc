// Receiver outages in the middle of an exporter run, with a real
// VictoriaMetrics: frozen for 40 s (SIGSTOP), and stopped then started again
// on the same data folder. Nothing may be lost: the points stored at the end
// are exactly those the engine emitted, which the file sink records for the
// same deterministic input. Also: SIGTERM while the receiver is down ends the
// run within the shutdown timeout and counts what was not delivered.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <limits>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/exporter_harness.h"
#include "tests/testing/free_port.h"
#include "tests/testing/victoria_metrics.h"

namespace converge {
namespace {

namespace fs = std::filesystem;
using harness::ExporterHarness;
using harness::ExporterResult;
using harness::Point;
using harness::Subprocess;
using harness::SummaryField;
using harness::VictoriaMetrics;

// A simulated workload that takes the sink several seconds to deliver, with
// a small sink queue so that an outage stops the whole pipeline quickly.
std::vector<std::string> Workload() {
  return {"--source=sim",
          "--sim-zones=200",
          "--sim-series-per-zone=10",
          "--sim-duration=3h",
          "--sim-start=2026-06-01T00:00:00Z",
          "--max-backfill=1h",
          "--backfill-calls-per-tick=20",
          "--shards=2",
          "--fetchers=2",
          "--batch-max-samples=500",
          "--sink-queue-max-samples=2048",
          "--shard-queue-max-observations=4096"};
}

// Describes the expected points missing from `stored`: how many, of how
// many series, and the time range they cover, for failure messages.
std::string DescribeMissing(const std::set<Point>& stored,
                            const std::set<Point>& expected) {
  uint64_t missing = 0;
  std::set<std::string> series;
  int64_t first_ms = std::numeric_limits<int64_t>::max();
  int64_t last_ms = std::numeric_limits<int64_t>::min();
  for (const Point& point : expected) {
    if (stored.count(point) > 0) continue;
    ++missing;
    series.insert(std::get<0>(point));
    first_ms = std::min(first_ms, std::get<1>(point));
    last_ms = std::max(last_ms, std::get<1>(point));
  }
  if (missing == 0) return "no expected point is missing\n";
  return absl::StrCat(missing, " expected points of ", series.size(),
                      " series are missing, with timestamps from ", first_ms,
                      " to ", last_ms, " ms\n");
}

class OutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = harness::MakeTestDir("converge-outage-test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  ExporterHarness Harness() const {
    return ExporterHarness(CONVERGE_EXPORTER_PATH, dir_);
  }

  // The points the engine emits for Workload(), from the file sink.
  std::set<Point> ExpectedPoints() {
    std::vector<std::string> args = Workload();
    const fs::path file = dir_ / "expected.jsonl";
    args.push_back("--sink=file");
    args.push_back("--sink-file=" + file.string());
    const ExporterResult result = Harness().Run(args, "expected");
    EXPECT_EQ(result.exit_code, 0) << result.err;
    absl::StatusOr<std::set<Point>> points = harness::FileSinkPoints(file);
    EXPECT_TRUE(points.ok()) << points.status();
    return points.ok() ? *points : std::set<Point>();
  }

  // Starts Workload() pushing to `vm`, runs `outage` once samples are
  // arriving, waits for the end, and checks that VictoriaMetrics stores
  // exactly ExpectedPoints().
  template <typename Outage>
  void RunThroughOutage(VictoriaMetrics& vm, Outage outage) {
    const std::set<Point> expected = ExpectedPoints();
    ASSERT_GT(expected.size(), 10'000u);

    std::vector<std::string> args = Workload();
    args.push_back("--sink=remote-write");
    args.push_back("--sink-url=" + vm.write_url());
    args.push_back("--sink-timeout=2s");
    args.push_back("--sink-retry-min=100ms");
    args.push_back("--sink-retry-max=2s");
    // The whole input is planned long before the sink finishes; the
    // deadline must outlast the outage.
    args.push_back("--shutdown-timeout=10m");
    // Keep every sample, so the stored points can equal the file sink's.
    args.push_back("--sink-coalesce-corrections=false");
    absl::StatusOr<std::unique_ptr<Subprocess>> exporter =
        Harness().Start(args, "pushed");
    ASSERT_TRUE(exporter.ok()) << exporter.status();

    // Wait until VictoriaMetrics contains some samples, then break it.
    bool arriving = false;
    for (int i = 0; i < 600 && !arriving; ++i) {
      ASSERT_FALSE((*exporter)->Poll().has_value()) << "exporter ended early";
      ASSERT_TRUE(vm.ForceFlush().ok());
      absl::StatusOr<std::vector<harness::ExportedSeries>> some =
          vm.Export("{__name__=\"cloudflare_zone_requests_total\"}");
      arriving = some.ok() && !some->empty();
      if (!arriving) usleep(50'000);
    }
    ASSERT_TRUE(arriving) << "no sample reached VictoriaMetrics";
    ASSERT_FALSE((*exporter)->Poll().has_value())
        << "the run ended before the outage; make the workload longer";
    outage();

    const ExporterResult result =
        Harness().Finish(**exporter, "pushed", absl::Minutes(10));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const std::string summary =
        result.err.substr(result.err.rfind("converge summary:"));
    std::cout << "exporter summary: " << summary;
    const uint64_t emitted = SummaryField(result.err, "samples");
    EXPECT_EQ(SummaryField(result.err, "delivered"), emitted);
    EXPECT_EQ(SummaryField(result.err, "undelivered"), 0u);
    EXPECT_EQ(SummaryField(result.err, "rejected"), 0u);
    EXPECT_GT(SummaryField(result.err, "retries"), 0u);

    // Export until every expected point is there or 30 s have passed.
    // NOTE: once, on a machine running two other builds, one export right
    // after the run lacked three quarters of the points, although every push
    // had been acknowledged. The cause is unknown. A point still missing
    // after 30 s fails the test, which then names the missing points.
    std::set<Point> points;
    int exports = 0;
    while (exports < 60) {
      ++exports;
      ASSERT_TRUE(vm.ForceFlush().ok());
      absl::StatusOr<std::vector<harness::ExportedSeries>> stored =
          vm.Export("{__name__=~\"cloudflare_.*\"}");
      ASSERT_TRUE(stored.ok()) << stored.status();
      points = harness::ExportedPoints(*stored);
      if (points.size() >= expected.size()) break;
      usleep(500'000);
    }
    std::cout << "pushed " << emitted << " samples, stored " << points.size()
              << " distinct points (export " << exports << "), expected "
              << expected.size() << "\n";
    EXPECT_EQ(points.size(), expected.size()) << DescribeMissing(points, expected)
                                              << vm.LogTail(4000);
    EXPECT_TRUE(points == expected);
  }

  fs::path dir_;
};

TEST_F(OutageTest, FrozenReceiverLosesNothing) {
  absl::StatusOr<std::unique_ptr<VictoriaMetrics>> vm =
      VictoriaMetrics::Start();
  ASSERT_TRUE(vm.ok()) << vm.status();
  RunThroughOutage(**vm, [&] {
    ASSERT_TRUE((*vm)->Pause().ok());
    sleep(40);
    ASSERT_TRUE((*vm)->Resume().ok());
  });
}

TEST_F(OutageTest, RestartedReceiverLosesNothing) {
  absl::StatusOr<std::unique_ptr<VictoriaMetrics>> vm =
      VictoriaMetrics::Start();
  ASSERT_TRUE(vm.ok()) << vm.status();
  RunThroughOutage(**vm, [&] {
    // Down for 10 s: every push meanwhile has its connection refused.
    ASSERT_TRUE((*vm)->Restart(absl::Seconds(10)).ok());
  });
}

TEST_F(OutageTest, SigtermDuringOutageCountsUndelivered) {
  // Nothing listens on this port: every push is refused.
  absl::StatusOr<int> port = harness::PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  std::vector<std::string> args = Workload();
  args.push_back("--sink=remote-write");
  args.push_back(absl::StrCat("--sink-url=http://127.0.0.1:", *port,
                              "/api/v1/write"));
  args.push_back("--shutdown-timeout=3s");
  args.push_back("--sim-duration=1000h");
  absl::StatusOr<std::unique_ptr<Subprocess>> exporter =
      Harness().Start(args, "down");
  ASSERT_TRUE(exporter.ok()) << exporter.status();

  sleep(1);
  ASSERT_FALSE((*exporter)->Poll().has_value()) << "exporter ended early";
  ASSERT_TRUE((*exporter)->Signal(SIGTERM).ok());
  // 3 s of deadline plus start-up and draining; a hang fails here.
  const ExporterResult result =
      Harness().Finish(**exporter, "down", absl::Seconds(30));

  EXPECT_EQ(result.exit_code, 0) << result.err;
  const uint64_t emitted = SummaryField(result.err, "samples");
  const uint64_t undelivered = SummaryField(result.err, "undelivered");
  std::cout << "emitted " << emitted << ", undelivered " << undelivered
            << "\n";
  EXPECT_EQ(SummaryField(result.err, "delivered"), 0u);
  EXPECT_GT(undelivered, 0u);
  EXPECT_EQ(undelivered, emitted);
  EXPECT_NE(result.err.find("not delivered before the shutdown deadline"),
            std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace converge

// End-to-end tests of converge-exporter --source=cloudflare: the binary
// against the fake Cloudflare API and a real VictoriaMetrics, all on
// 127.0.0.1.
//
// The exporter runs a simulated clock (--cf-clock-start, --cf-clock-duration)
// and the fake's clock follows the time ranges the exporter requests, so the
// run is deterministic and takes seconds instead of simulated minutes.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/fake_cloudflare/fake_cloudflare.h"
#include "tests/testing/exporter_harness.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/victoria_metrics.h"

namespace converge {
namespace {

namespace fs = std::filesystem;
using fake_cloudflare::ExpectedPoint;
using fake_cloudflare::FakeCloudflare;
using fake_cloudflare::FakeOptions;
using harness::Subprocess;
using harness::SubprocessOptions;
using harness::VictoriaMetrics;

const absl::Time kStart = absl::FromUnixSeconds(1'780'272'000);  // 2026-06-01
constexpr char kStartText[] = "2026-06-01T00:00:00Z";
constexpr char kToken[] = "e2e-SECRET-token-93d1";

// "name{a="1",b="2"}" with labels sorted; `__name__` is the name.
std::string SeriesKey(const std::string& name,
                      const std::map<std::string, std::string>& labels) {
  std::string text = name + "{";
  bool first = true;
  for (const auto& [label, value] : labels) {
    if (label == "__name__") continue;
    absl::StrAppend(&text, first ? "" : ",", label, "=\"", value, "\"");
    first = false;
  }
  return text + "}";
}

struct RunResult {
  int exit_code = -1;
  std::string err;
};

class CloudflareExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = harness::MakeTestDir("converge-cloudflare-test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void StartFake(int zones, int free_every) {
    FakeOptions options;
    options.zones = fake_cloudflare::MakeZones(zones, free_every);
    options.token = kToken;
    options.start = kStart;
    absl::StatusOr<std::unique_ptr<FakeCloudflare>> fake =
        FakeCloudflare::Start(options);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = *std::move(fake);
  }

  // Runs the exporter with `args`; `env` sets its environment on top of
  // this process's, where CF_API_TOKEN and the legacy pair are cleared.
  RunResult Run(std::vector<std::string> args,
                std::vector<std::pair<std::string, std::string>> env,
                const std::string& tag) {
    SubprocessOptions options;
    options.argv.push_back(CONVERGE_EXPORTER_PATH);
    for (std::string& arg : args) options.argv.push_back(std::move(arg));
    for (const char* name : {"CF_API_TOKEN", "CF_API_EMAIL", "CF_API_KEY"}) {
      const bool set_by_test = std::any_of(
          env.begin(), env.end(),
          [name](const auto& entry) { return entry.first == name; });
      if (!set_by_test) options.env.emplace_back(name, "");
    }
    for (auto& entry : env) options.env.push_back(std::move(entry));
    options.stdout_path = (dir_ / (tag + ".out")).string();
    options.stderr_path = (dir_ / (tag + ".err")).string();

    RunResult result;
    absl::StatusOr<std::unique_ptr<Subprocess>> process =
        Subprocess::Start(options);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return result;
    absl::StatusOr<int> status = (*process)->Wait(absl::Minutes(5));
    EXPECT_TRUE(status.ok()) << tag << ": " << status.status();
    if (status.ok() && WIFEXITED(*status))
      result.exit_code = WEXITSTATUS(*status);
    result.err = harness::ReadFile(dir_ / (tag + ".err"));
    return result;
  }

  // The flags that point the exporter at the fake with a simulated clock.
  std::vector<std::string> FakeFlags(const std::string& duration) const {
    return {"--source=cloudflare",
            "--cf-api-url=" + fake_->graphql_url(),
            "--cf-rest-url=" + fake_->rest_url(),
            absl::StrCat("--cf-clock-start=", kStartText),
            "--cf-clock-duration=" + duration,
            "--poll-interval=30s",
            "--lookback=10m",
            "--window-ttl=15m"};
  }

  fs::path dir_;
  std::unique_ptr<FakeCloudflare> fake_;
};

TEST_F(CloudflareExporterTest, StoresTheFakesFinalValuesInVictoriaMetrics) {
  StartFake(12, /*free_every=*/6);  // zones 5 and 11 are on the Free plan
  absl::StatusOr<std::unique_ptr<VictoriaMetrics>> vm =
      VictoriaMetrics::Start();
  ASSERT_TRUE(vm.ok()) << vm.status();

  // 15 simulated minutes, 30 minutes of backfill before the start.
  std::vector<std::string> args = FakeFlags("15m");
  for (const char* flag :
       {"--max-backfill=30m", "--backfill-chunk=10m",
        "--backfill-calls-per-tick=10", "--threshold=3", "--shards=2",
        "--fetchers=2", "--sink=remote-write"}) {
    args.emplace_back(flag);
  }
  args.push_back("--sink-url=" + (*vm)->write_url());
  RunResult run = Run(args, {{"CF_API_TOKEN", kToken}}, "e2e");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const size_t summary_at = run.err.rfind("converge summary:");
  ASSERT_NE(summary_at, std::string::npos) << run.err;
  std::cout << "exporter summary: " << run.err.substr(summary_at);
  EXPECT_EQ(harness::SummaryField(run.err, "undelivered"), 0u);
  EXPECT_EQ(harness::SummaryField(run.err, "rejected"), 0u);
  EXPECT_FALSE(absl::StrContains(run.err, kToken));
  EXPECT_NE(run.err.find("2 of 12 zones are on the Free plan"),
            std::string::npos);

  // What VictoriaMetrics stored: series -> timestamp -> values.
  ASSERT_TRUE((*vm)->ForceFlush().ok());
  absl::StatusOr<std::vector<harness::ExportedSeries>> exported =
      (*vm)->Export("{__name__=~\"cloudflare_.*\"}");
  ASSERT_TRUE(exported.ok()) << exported.status();
  std::map<std::string, std::map<int64_t, std::vector<double>>> stored;
  for (const harness::ExportedSeries& series : *exported) {
    ASSERT_EQ(series.values.size(), series.timestamps.size());
    const std::string key =
        SeriesKey(series.metric.at("__name__"), series.metric);
    for (size_t i = 0; i < series.values.size(); ++i) {
      stored[key][series.timestamps[i]].push_back(series.values[i]);
    }
  }
  ASSERT_FALSE(stored.empty());

  // Minutes from the backfill's start until the last one that settled (four
  // minutes old) by the final tick at start + 15m.
  const absl::Time from = kStart - absl::Minutes(30);
  const absl::Time settled_end = kStart + absl::Minutes(12);
  const absl::Time end = kStart + absl::Minutes(15);
  const std::vector<ExpectedPoint> expected = fake_cloudflare::ExpectedSeries(
      fake_->model(), fake_->zones(), from, settled_end);
  std::map<std::string, std::map<int64_t, uint64_t>> want;
  for (const ExpectedPoint& point : expected) {
    want[SeriesKey(point.name, point.labels)][point.timestamp_ms] = point.value;
  }

  // Every settled (series, minute) is stored once, with the final value, at
  // the minute's timestamp.
  size_t checked = 0;
  for (const auto& [series, points] : want) {
    for (const auto& [timestamp, value] : points) {
      auto found = stored.find(series);
      ASSERT_NE(found, stored.end()) << series;
      auto at = found->second.find(timestamp);
      ASSERT_NE(at, found->second.end())
          << series << " at " << absl::FromUnixMillis(timestamp);
      ASSERT_EQ(at->second.size(), 1u)
          << series << " at " << absl::FromUnixMillis(timestamp);
      EXPECT_EQ(at->second[0], static_cast<double>(value))
          << series << " at " << absl::FromUnixMillis(timestamp);
      ++checked;
    }
  }
  std::cout << "checked " << checked << " settled (series, minute) values of "
            << want.size() << " series\n";

  // Nothing else was stored for settled minutes but zero-filled statuses,
  // and nothing at all outside the run's minutes.
  size_t zero_filled = 0;
  const std::vector<ExpectedPoint> young = fake_cloudflare::ExpectedSeries(
      fake_->model(), fake_->zones(), settled_end, end);
  std::map<std::string, std::map<int64_t, uint64_t>> final_of_young;
  for (const ExpectedPoint& point : young) {
    final_of_young[SeriesKey(point.name, point.labels)][point.timestamp_ms] =
        point.value;
  }
  for (const harness::ExportedSeries& series : *exported) {
    const std::string key =
        SeriesKey(series.metric.at("__name__"), series.metric);
    for (size_t i = 0; i < series.values.size(); ++i) {
      const absl::Time minute = absl::FromUnixMillis(series.timestamps[i]);
      EXPECT_GE(minute, from) << key;
      EXPECT_LT(minute, end) << key;
      EXPECT_EQ(minute,
                absl::UnixEpoch() +
                    absl::Floor(minute - absl::UnixEpoch(), absl::Minutes(1)))
          << key << " is not stamped with a minute start";
      if (minute >= settled_end) {
        // Not settled by the end: flushed at shutdown with a partial value.
        auto it = final_of_young.find(key);
        const uint64_t final_value =
            it == final_of_young.end() ||
                    !it->second.contains(series.timestamps[i])
                ? 0
                : it->second.at(series.timestamps[i]);
        EXPECT_LE(series.values[i], static_cast<double>(final_value)) << key;
        continue;
      }
      auto it = want.find(key);
      if (it != want.end() && it->second.contains(series.timestamps[i]))
        continue;
      std::map<std::string, std::string> labels = series.metric;
      labels.erase("__name__");
      EXPECT_TRUE(
          fake_cloudflare::IsZeroFillable(series.metric.at("__name__"), labels))
          << key << " at " << minute << " is not in the fake's data";
      EXPECT_EQ(series.values[i], 0) << key << " at " << minute;
      ++zero_filled;
    }
  }
  std::cout << "zero-filled status values stored: " << zero_filled << "\n";
  EXPECT_GT(zero_filled, 0u);
}

TEST_F(CloudflareExporterTest, TokenFileIsReadAndNeverLogged) {
  StartFake(3, 0);
  const fs::path token_file = dir_ / "token";
  std::ofstream(token_file) << kToken << "\n";
  const fs::path output = dir_ / "samples.jsonl";

  std::vector<std::string> args = FakeFlags("5m");
  args.push_back("--cf-api-token-file=" + token_file.string());
  args.push_back("--max-backfill=0s");
  args.push_back("--log-level=trace");
  args.push_back("--sink=file");
  args.push_back("--sink-file=" + output.string());
  fake_->AddFault(
      fake_cloudflare::FaultOf(fake_cloudflare::FaultKind::kEchoCredentials));
  fake_->AddFault(
      fake_cloudflare::FaultOf(fake_cloudflare::FaultKind::kHtml502));
  RunResult run = Run(args, {}, "token-file");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_FALSE(absl::StrContains(run.err, kToken)) << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "REDACTED")) << run.err;
  EXPECT_FALSE(harness::SortedLines(output).empty());
}

TEST_F(CloudflareExporterTest, MissingCredentialsExitTwo) {
  StartFake(1, 0);
  RunResult run = Run(FakeFlags("1m"), {}, "no-token");
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "CF_API_TOKEN")) << run.err;
}

TEST_F(CloudflareExporterTest, RejectsPlainHttpToAnotherHost) {
  RunResult run = Run(
      {"--source=cloudflare", "--cf-api-url=http://api.example.com/graphql"},
      {{"CF_API_TOKEN", kToken}}, "plain-http");
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "--cf-api-url")) << run.err;
  EXPECT_FALSE(absl::StrContains(run.err, kToken));
}

TEST_F(CloudflareExporterTest, InvalidCloudflareFlagsExitTwo) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--cf-zones-per-query=11", "from 1 to 10"},
      {"--cf-row-limit=10000", "from 1 to 9999"},
      {"--cluster-member-index=2", "--cluster-member-index=2"},
      {"--metrics-allow=cloudflare_zone_nope", "cloudflare_zone_nope"},
      {"--cf-clock-duration=5m", "--cf-clock-start"},
      {"--cf-clock-start=yesterday", "RFC 3339"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    RunResult run = Run({"--source=cloudflare", cases[i].first},
                        {{"CF_API_TOKEN", kToken}}, absl::StrCat("invalid", i));
    EXPECT_EQ(run.exit_code, 2) << cases[i].first;
    EXPECT_TRUE(absl::StrContains(run.err, cases[i].second))
        << cases[i].first << " should mention " << cases[i].second << ": "
        << run.err;
  }
}

TEST_F(CloudflareExporterTest, UnreachableApiFailsStartWithExitOne) {
  StartFake(1, 0);
  const std::string rest = fake_->rest_url();
  fake_->Stop();
  RunResult run = Run({"--source=cloudflare", "--cf-rest-url=" + rest,
                       "--cf-api-url=" + rest + "/graphql", "--cf-timeout=2s"},
                      {{"CF_API_TOKEN", kToken}}, "unreachable");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "cannot start source cloudflare"))
      << run.err;
}

}  // namespace
}  // namespace converge

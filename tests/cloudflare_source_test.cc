// Tests of the cloudflare source against the fake Cloudflare API on
// 127.0.0.1. They cover zone discovery, free-plan handling, every error
// class, zero fill across ticks, row-limit splitting, the budget and cluster
// ownership, and check that no credential reaches a log line or a status
// message.
//
// Fetch() is called directly with tasks like the lanes plan them. The fake's
// clock follows the requested ranges and the source's rate-limit pauses run
// on a manual clock, so no test waits for time to pass.

#include "sources/cloudflare_source.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "converge/sources.h"
#include "tests/fake_cloudflare/fake_cloudflare.h"
#include "testing/fetch_all.h"

namespace converge::cloudflare {
namespace {

using fake_cloudflare::ExpectedPoint;
using fake_cloudflare::FakeCloudflare;
using fake_cloudflare::FakeOptions;
using fake_cloudflare::FakeZone;
using fake_cloudflare::Fault;
using fake_cloudflare::FaultKind;
using fake_cloudflare::FaultOf;
using fake_cloudflare::Http429Fault;
using fake_cloudflare::LoggedRequest;
using fake_cloudflare::SlowFault;
using fake_cloudflare::ZoneDeniedFault;

const absl::Time kStart = absl::FromUnixSeconds(1'780'272'000);  // 2026-06-01
constexpr char kToken[] = "tok-SECRET-5e1f0c";

// A clock that moves only when the test advances it.
class ManualClock {
 public:
  absl::Time Now() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return now_;
  }
  void Advance(absl::Duration by) {
    std::lock_guard<std::mutex> lock(mutex_);
    now_ += by;
  }

 private:
  mutable std::mutex mutex_;
  absl::Time now_ = kStart;
};

// Sends every log line to a buffer for the test's lifetime.
class LogCapture {
 public:
  LogCapture()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100000)),
        previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }

  std::vector<std::string> Lines() const { return sink_->last_formatted(); }

  size_t Count(std::string_view needle) const {
    size_t count = 0;
    for (const std::string& line : Lines()) {
      if (line.find(needle) != std::string::npos) ++count;
    }
    return count;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// "name{labels}" -> value, for one bucket.
std::map<std::string, uint64_t> AtBucket(
    const std::vector<Observation>& observations, absl::Time bucket) {
  std::map<std::string, uint64_t> values;
  for (const Observation& observation : observations) {
    if (observation.bucket_ms == absl::ToUnixMillis(bucket)) {
      values[observation.series.ToString()] = observation.value;
    }
  }
  return values;
}

std::string Key(const ExpectedPoint& point) {
  std::string text = point.name + "{";
  bool first = true;
  for (const auto& [name, value] : point.labels) {
    absl::StrAppend(&text, first ? "" : ",", name, "=\"", value, "\"");
    first = false;
  }
  return text + "}";
}

class CloudflareSourceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }

  // Starts the fake with `zones`; every `free_every`-th zone on the Free
  // plan.
  void StartFake(int zones, int free_every = 0, int max_per_page = 50) {
    FakeOptions options;
    options.zones = fake_cloudflare::MakeZones(zones, free_every);
    options.token = kToken;
    options.start = kStart;
    options.max_per_page = max_per_page;
    absl::StatusOr<std::unique_ptr<FakeCloudflare>> fake =
        FakeCloudflare::Start(options);
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = *std::move(fake);
  }

  // Options for the fake: one query per dataset per tick, no backfill, a
  // simulated clock from kStart.
  CloudflareOptions Options() const {
    CloudflareOptions options;
    options.credentials.api_token = kToken;
    options.graphql_url = fake_->graphql_url();
    options.rest_url = fake_->rest_url();
    options.timeout = absl::Seconds(10);
    options.clock_start = kStart;
    options.clock_duration = absl::Hours(1);
    options.lanes.max_backfill = absl::ZeroDuration();
    return options;
  }

  std::unique_ptr<CloudflareSource> Make(const CloudflareOptions& options) {
    absl::StatusOr<std::unique_ptr<CloudflareSource>> source =
        CloudflareSource::Create(options, [this] { return clock_.Now(); });
    EXPECT_TRUE(source.ok()) << source.status();
    return source.ok() ? *std::move(source) : nullptr;
  }

  // A live task of `partition` at `now`.
  static FetchTask Live(uint32_t partition, absl::Time now) {
    FetchTask task;
    task.lane = Lane::kLive;
    task.partition = partition;
    task.range = {now - absl::Minutes(10), now};
    task.now = now;
    return task;
  }

  static std::vector<Observation> FetchOk(CloudflareSource& source,
                                          const FetchTask& task) {
    std::vector<Observation> out;
    absl::Status status = harness::FetchAll(source, task, &out);
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }

  std::vector<LoggedRequest> GraphqlRequests() const {
    std::vector<LoggedRequest> requests;
    for (LoggedRequest& request : fake_->requests()) {
      if (request.path == "/client/v4/graphql") requests.push_back(request);
    }
    return requests;
  }

  size_t ZoneIndex(const std::string& id) const {
    for (size_t i = 0; i < fake_->zones().size(); ++i) {
      if (fake_->zones()[i].id == id) return i;
    }
    return fake_->zones().size();
  }

  ManualClock clock_;
  std::unique_ptr<FakeCloudflare> fake_;
};

// --- Zones and plans --------------------------------------------------------

TEST_F(CloudflareSourceTest, DiscoveryFollowsPagination) {
  StartFake(120, 0, /*max_per_page=*/50);
  CloudflareOptions options = Options();
  options.metrics_allow = {"cloudflare_zone_requests_status_v2"};
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);

  std::set<std::string> zones;
  for (const Partition& partition : source->partitions()) {
    EXPECT_LE(partition.zones.size(), 10u);
    for (const ZoneInfo& zone : partition.zones) zones.insert(zone.id);
  }
  EXPECT_EQ(zones.size(), 120u);
  EXPECT_EQ(source->partitions().size(), 12u);

  size_t listing_pages = 0;
  for (const LoggedRequest& request : fake_->requests()) {
    if (request.path == "/client/v4/zones") ++listing_pages;
  }
  EXPECT_EQ(listing_pages, 3u);
}

TEST_F(CloudflareSourceTest, ListingRetriesATransientFailure) {
  StartFake(3);
  fake_->AddFault(FaultOf(FaultKind::kHttp503, "zones"));
  std::unique_ptr<CloudflareSource> source = Make(Options());
  ASSERT_NE(source, nullptr);
  EXPECT_FALSE(source->partitions().empty());
}

TEST_F(CloudflareSourceTest, ExplicitZonesAndExclusions) {
  StartFake(5);
  CloudflareOptions options = Options();
  const std::vector<FakeZone>& zones = fake_->zones();
  options.zones = {zones[0].id, zones[1].id, zones[2].id};
  options.exclude_zones = {zones[1].name};
  options.metrics_allow = {"cloudflare_zone_requests_total"};
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);

  ASSERT_EQ(source->partitions().size(), 1u);
  const std::vector<ZoneInfo>& selected = source->partitions()[0].zones;
  ASSERT_EQ(selected.size(), 2u);
  EXPECT_EQ(selected[0].id, zones[0].id);
  EXPECT_EQ(selected[1].id, zones[2].id);
  for (const LoggedRequest& request : fake_->requests()) {
    EXPECT_NE(request.path, "/client/v4/zones") << "listed although --zones";
  }
}

TEST_F(CloudflareSourceTest, UnreadableZoneFailsStartNamingIt) {
  StartFake(2);
  CloudflareOptions options = Options();
  options.zones = {"0123456789abcdef0123456789abcdef"};
  absl::StatusOr<std::unique_ptr<CloudflareSource>> source =
      CloudflareSource::Create(options, [this] { return clock_.Now(); });
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(source.status().message(),
                                "0123456789abcdef0123456789abcdef"));
}

TEST_F(CloudflareSourceTest, FreePlanZonesSkipThePerMinuteDataset) {
  StartFake(4, /*free_every=*/2);  // zones 1 and 3 are on the Free plan
  LogCapture logs;
  std::unique_ptr<CloudflareSource> source = Make(Options());
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->cloudflare_stats().free_plan_zones, 2u);
  EXPECT_EQ(logs.Count("is on the Free plan"), 2u);
  EXPECT_EQ(logs.Count("2 of 4 zones are on the Free plan"), 1u);

  // Every partition: no plan error, free zones only outside
  // httpRequests1mGroups.
  const absl::Time now = kStart + absl::Minutes(10);
  std::vector<Observation> observations;
  for (uint32_t p = 0; p < source->partitions().size(); ++p) {
    const Partition& partition = source->partitions()[p];
    for (const ZoneInfo& zone : partition.zones) {
      if (partition.dataset == Dataset::kHttp1m) {
        EXPECT_FALSE(zone.free_plan) << zone.name;
      }
    }
    for (Observation& o : FetchOk(*source, Live(p, now))) {
      observations.push_back(std::move(o));
    }
  }
  for (const LoggedRequest& request : GraphqlRequests()) {
    EXPECT_EQ(request.status, 200);
    if (request.dataset != "httpRequests1mGroups") continue;
    for (const std::string& tag : request.zone_tags) {
      EXPECT_FALSE(fake_->zones()[ZoneIndex(tag)].free_plan()) << tag;
    }
  }
  const std::string free_zone = fake_->zones()[1].name;
  bool has_adaptive = false;
  for (const Observation& observation : observations) {
    const std::string series = observation.series.ToString();
    if (!absl::StrContains(series, absl::StrCat("zone=\"", free_zone, "\""))) {
      continue;
    }
    EXPECT_FALSE(absl::StartsWith(series, "cloudflare_zone_requests_total"));
    if (absl::StartsWith(series, "cloudflare_zone_requests_status_v2")) {
      has_adaptive = true;
    }
  }
  EXPECT_TRUE(has_adaptive);
  EXPECT_EQ(source->cloudflare_stats().failures_of(FailureCause::kZoneDenied),
            0u);
}

// --- Values -----------------------------------------------------------------

TEST_F(CloudflareSourceTest, SettledMinutesMatchTheFakesValues) {
  StartFake(3);
  std::unique_ptr<CloudflareSource> source = Make(Options());
  ASSERT_NE(source, nullptr);

  const absl::Time now = kStart + absl::Minutes(20);
  std::vector<Observation> observations;
  for (uint32_t p = 0; p < source->partitions().size(); ++p) {
    for (Observation& o : FetchOk(*source, Live(p, now))) {
      observations.push_back(std::move(o));
    }
  }

  // Minutes at least four minutes old have settled.
  for (absl::Time minute = now - absl::Minutes(10);
       minute <= now - absl::Minutes(4); minute += absl::Minutes(1)) {
    const std::map<std::string, uint64_t> got = AtBucket(observations, minute);
    const std::vector<ExpectedPoint> expected = fake_cloudflare::ExpectedSeries(
        fake_->model(), fake_->zones(), minute, minute + absl::Minutes(1));
    ASSERT_FALSE(expected.empty());
    for (const ExpectedPoint& point : expected) {
      auto it = got.find(Key(point));
      ASSERT_NE(it, got.end()) << Key(point) << " at " << minute;
      EXPECT_EQ(it->second, point.value) << Key(point) << " at " << minute;
    }
  }
}

TEST_F(CloudflareSourceTest, OnlyEndedMinutesOfTheRangeAreQueried) {
  StartFake(1);
  CloudflareOptions options = Options();
  options.metrics_allow = {"cloudflare_zone_requests_total"};
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);

  FetchTask task = Live(0, kStart + absl::Minutes(10) + absl::Seconds(30));
  std::vector<Observation> observations = FetchOk(*source, task);
  std::vector<LoggedRequest> requests = GraphqlRequests();
  ASSERT_EQ(requests.size(), 1u);
  // [now - 10m, now] with now at hh:10:30: whole minutes 00:01 .. 00:09.
  EXPECT_EQ(requests[0].start, kStart + absl::Minutes(1));
  EXPECT_EQ(requests[0].end, kStart + absl::Minutes(10));
  for (const Observation& observation : observations) {
    EXPECT_GE(observation.bucket_ms,
              absl::ToUnixMillis(kStart + absl::Minutes(1)));
    EXPECT_LT(observation.bucket_ms,
              absl::ToUnixMillis(kStart + absl::Minutes(10)));
  }
}

// --- Errors -----------------------------------------------------------------

class CloudflareErrorTest : public CloudflareSourceTest {
 protected:
  // Four zones in two partitions of httpRequests1mGroups.
  void SetUp() override {
    StartFake(4);
    CloudflareOptions options = Options();
    options.metrics_allow = {"cloudflare_zone_requests_total",
                             "cloudflare_zone_requests_status"};
    options.zones_per_query = 2;
    options.rate_limit_backoff = absl::Minutes(3);
    options.zone_error_backoff = absl::Minutes(10);
    options.timeout = absl::Milliseconds(500);
    Customize(options);
    source_ = Make(options);
    ASSERT_NE(source_, nullptr);
    ASSERT_EQ(source_->partitions().size(), 2u);
  }
  virtual void Customize(CloudflareOptions& options) { (void)options; }

  absl::Status FetchStatus(uint32_t partition, std::vector<Observation>* out,
                           absl::Time now = kStart + absl::Minutes(10)) {
    return harness::FetchAll(*source_, Live(partition, now), out);
  }

  uint64_t Failures(FailureCause cause) const {
    return source_->cloudflare_stats().failures_of(cause);
  }

  std::unique_ptr<CloudflareSource> source_;
};

TEST_F(CloudflareErrorTest, Http429WithRetryAfterPausesEveryFetcher) {
  LogCapture logs;
  fake_->AddFault(Http429Fault(/*retry_after_seconds=*/120));
  std::vector<Observation> out;

  absl::Status first = FetchStatus(0, &out);
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(Failures(FailureCause::kRateLimited), 1u);

  // The other partition does not even ask while the pause runs.
  const size_t sent = fake_->graphql_requests();
  absl::Status second = FetchStatus(1, &out);
  EXPECT_EQ(second.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(second.message(), "paused"));
  EXPECT_EQ(fake_->graphql_requests(), sent);
  EXPECT_EQ(source_->cloudflare_stats().fetches_paused, 1u);
  EXPECT_EQ(logs.Count("rate limited by the API"), 1u);
  EXPECT_EQ(logs.Count("for 2m"), 1u);

  clock_.Advance(absl::Seconds(119));
  EXPECT_FALSE(FetchStatus(1, &out).ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(FetchStatus(1, &out).ok());
  EXPECT_FALSE(out.empty());
}

TEST_F(CloudflareErrorTest, Http429WithoutRetryAfterPausesForTheBackoff) {
  fake_->AddFault(FaultOf(FaultKind::kHttp429));
  std::vector<Observation> out;
  EXPECT_FALSE(FetchStatus(0, &out).ok());
  clock_.Advance(absl::Minutes(3) - absl::Seconds(1));
  EXPECT_FALSE(FetchStatus(0, &out).ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(FetchStatus(0, &out).ok());
  EXPECT_EQ(source_->cloudflare_stats().rate_limit_pauses, 1u);
}

TEST_F(CloudflareErrorTest, BudgetErrorInside200PausesEveryFetcher) {
  LogCapture logs;
  fake_->AddFault(FaultOf(FaultKind::kBudgetExceeded));
  std::vector<Observation> out;
  absl::Status status = FetchStatus(0, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), "budget depleted"));
  EXPECT_EQ(Failures(FailureCause::kRateLimited), 1u);

  // The message requests 5 minutes.
  clock_.Advance(absl::Minutes(5) - absl::Seconds(1));
  EXPECT_FALSE(FetchStatus(1, &out).ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(FetchStatus(1, &out).ok());
  EXPECT_EQ(logs.Count("rate limited by the API"), 1u);
}

TEST_F(CloudflareErrorTest, ConcurrentRateLimitsLogOneWarning) {
  LogCapture logs;
  fake_->AddFault(Http429Fault(60, /*times=*/2));
  std::vector<std::thread> threads;
  for (uint32_t p = 0; p < 2; ++p) {
    threads.emplace_back([this, p] {
      std::vector<Observation> out;
      EXPECT_FALSE(FetchStatus(p, &out).ok());
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(logs.Count("rate limited by the API"), 1u);
  EXPECT_EQ(source_->cloudflare_stats().rate_limit_pauses, 1u);
}

TEST_F(CloudflareErrorTest, ZoneErrorKeepsTheOtherZonesFlowing) {
  LogCapture logs;
  const FakeZone& denied =
      fake_->zones()[1];  // partition 0 contains zones 0 and 1
  fake_->AddFault(
      ZoneDeniedFault("httpRequests1mGroups", denied.id, /*times=*/-1));

  // The response names zone 1, so zone 0 is queried again alone.
  std::vector<Observation> out;
  ASSERT_TRUE(FetchStatus(0, &out).ok());
  std::set<std::string> zones_seen;
  for (const Observation& observation : out) {
    for (const auto& [name, value] : observation.series.labels()) {
      if (name == "zone") zones_seen.insert(std::string(value));
    }
  }
  EXPECT_EQ(zones_seen, (std::set<std::string>{fake_->zones()[0].name}));
  std::vector<LoggedRequest> requests = GraphqlRequests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].zone_tags.size(), 2u);
  EXPECT_EQ(requests[1].zone_tags,
            (std::vector<std::string>{fake_->zones()[0].id}));
  EXPECT_EQ(Failures(FailureCause::kZoneDenied), 1u);
  EXPECT_EQ(source_->cloudflare_stats().zones_left_out, 1u);
  EXPECT_EQ(logs.Count(absl::StrCat("zone ", denied.name)), 1u);

  // During the backoff the zone is not asked for at all.
  out.clear();
  ASSERT_TRUE(FetchStatus(0, &out, kStart + absl::Minutes(15)).ok());
  requests = GraphqlRequests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].zone_tags,
            (std::vector<std::string>{fake_->zones()[0].id}));
  EXPECT_EQ(Failures(FailureCause::kZoneDenied), 1u);

  // After it, the zone is tried again.
  out.clear();
  ASSERT_TRUE(FetchStatus(0, &out, kStart + absl::Minutes(21)).ok());
  requests = GraphqlRequests();
  EXPECT_EQ(requests[3].zone_tags.size(), 2u);
  EXPECT_EQ(Failures(FailureCause::kZoneDenied), 2u);
}

TEST_F(CloudflareErrorTest, RangeTooOldForOneZoneIsSkipped) {
  const FakeZone& old_zone = fake_->zones()[1];
  Fault fault = ZoneDeniedFault("httpRequests1mGroups", old_zone.id, 1);
  fault.kind = FaultKind::kDataTooOld;
  fake_->AddFault(fault);

  // Zone 0 keeps flowing, and zone 1 is not put into a backoff.
  std::vector<Observation> out;
  ASSERT_TRUE(FetchStatus(0, &out).ok());
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(Failures(FailureCause::kTooOld), 1u);
  EXPECT_EQ(Failures(FailureCause::kZoneDenied), 0u);
  EXPECT_EQ(source_->cloudflare_stats().zones_left_out, 0u);
  out.clear();
  ASSERT_TRUE(FetchStatus(0, &out, kStart + absl::Minutes(11)).ok());
  EXPECT_EQ(GraphqlRequests().back().zone_tags.size(), 2u);
}

TEST_F(CloudflareErrorTest, Http503IsCountedAndRetriedNextTick) {
  fake_->AddFault(FaultOf(FaultKind::kHttp503));
  std::vector<Observation> out;
  absl::Status status = FetchStatus(0, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), "HTTP 503")) << status;
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(Failures(FailureCause::kHttp5xx), 1u);
  EXPECT_EQ(source_->cloudflare_stats().rate_limit_pauses, 0u);
  EXPECT_TRUE(FetchStatus(0, &out, kStart + absl::Seconds(630)).ok());
  EXPECT_FALSE(out.empty());

  // The failure is attributed to the dataset of partition 0.
  const std::string dataset(DatasetName(source_->partitions()[0].dataset));
  const SourceStats stats = source_->Stats();
  EXPECT_EQ(stats.failures.at({dataset, "http_5xx"}), 1u);
  EXPECT_EQ(stats.api_queries_by_dataset.at(dataset), 2u);
}

TEST_F(CloudflareErrorTest, HtmlErrorPageIsCounted) {
  fake_->AddFault(FaultOf(FaultKind::kHtml502));
  std::vector<Observation> out;
  absl::Status status = FetchStatus(0, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), "HTML")) << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "<html>"));
  EXPECT_EQ(Failures(FailureCause::kHtml), 1u);
  EXPECT_TRUE(out.empty());
}

TEST_F(CloudflareErrorTest, SlowAnswerTimesOut) {
  fake_->AddFault(SlowFault(absl::Seconds(5)));
  std::vector<Observation> out;
  absl::Status status = FetchStatus(0, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), "timed out")) << status;
  EXPECT_EQ(Failures(FailureCause::kTimeout), 1u);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(FetchStatus(0, &out).ok());
}

TEST_F(CloudflareErrorTest, TruncatedJsonIsCounted) {
  fake_->AddFault(FaultOf(FaultKind::kTruncatedJson));
  std::vector<Observation> out;
  EXPECT_EQ(FetchStatus(0, &out).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Failures(FailureCause::kMalformed), 1u);
  EXPECT_TRUE(out.empty());
}

TEST_F(CloudflareErrorTest, BodyThatIsNotJsonIsCounted) {
  fake_->AddFault(FaultOf(FaultKind::kNotJson));
  std::vector<Observation> out;
  EXPECT_EQ(FetchStatus(0, &out).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Failures(FailureCause::kMalformed), 1u);
}

TEST_F(CloudflareErrorTest, ErrorsArrayDecidesOverHttp200) {
  fake_->AddFault(FaultOf(FaultKind::kGraphqlError));
  std::vector<Observation> out;
  absl::Status status = FetchStatus(0, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), "scalar fields")) << status;
  EXPECT_EQ(Failures(FailureCause::kGraphql), 1u);
  EXPECT_TRUE(out.empty());
}

TEST_F(CloudflareErrorTest, RefusedConnectionIsCounted) {
  fake_->Stop();
  std::vector<Observation> out;
  EXPECT_EQ(FetchStatus(0, &out).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Failures(FailureCause::kConnection), 1u);
}

// --- Zero fill --------------------------------------------------------------

class CloudflareZeroFillTest : public CloudflareSourceTest {
 protected:
  void SetUp() override {
    StartFake(1);
    CloudflareOptions options = Options();
    options.metrics_allow = {"cloudflare_zone_requests_status_v2"};
    source_ = Make(options);
    ASSERT_NE(source_, nullptr);
  }

  // One settled minute of the zone at `minute`, fetched alone.
  std::vector<Observation> FetchMinute(absl::Time minute) {
    FetchTask task = Live(0, minute + absl::Minutes(10));
    task.range = {minute, minute + absl::Minutes(1)};
    return FetchOk(*source_, task);
  }

  // A minute whose final breakdown lacks `status`, and one that has it.
  absl::Time MinuteWith(int status, bool present) const {
    for (absl::Time minute = kStart; minute < kStart + absl::Hours(1);
         minute += absl::Minutes(1)) {
      const auto data = fake_->model().Final(0, minute);
      const bool has = std::any_of(
          data.statuses.begin(), data.statuses.end(),
          [status](const auto& entry) { return entry.first == status; });
      if (has == present) return minute;
    }
    ADD_FAILURE() << "no minute with status " << status
                  << " present=" << present;
    return kStart;
  }

  std::string Series(int status) const {
    return absl::StrCat("cloudflare_zone_requests_status_v2{status=\"", status,
                        "\",zone=\"", fake_->zones()[0].name, "\"}");
  }

  std::unique_ptr<CloudflareSource> source_;
};

TEST_F(CloudflareZeroFillTest, StatusFromEarlierTickFilled) {
  const absl::Time without = MinuteWith(500, false);
  const absl::Time with = MinuteWith(500, true);

  // Never seen: no zero.
  EXPECT_EQ(AtBucket(FetchMinute(without), without).count(Series(500)), 0u);

  // Seen in a fetch of tick 0; from the next tick on it is a known status.
  EXPECT_GT(AtBucket(FetchMinute(with), with).at(Series(500)), 0u);
  std::vector<Observation> same_tick = FetchMinute(without);
  EXPECT_EQ(AtBucket(same_tick, without).count(Series(500)), 0u)
      << "a status seen by another fetch of the same tick is not used yet";
  ASSERT_TRUE(source_->NextTick(std::stop_token()).has_value());
  std::vector<Observation> next_tick = FetchMinute(without);
  ASSERT_EQ(AtBucket(next_tick, without).count(Series(500)), 1u);
  EXPECT_EQ(AtBucket(next_tick, without).at(Series(500)), 0u);
  EXPECT_GE(source_->cloudflare_stats().zero_filled, 1u);
}

TEST_F(CloudflareZeroFillTest, StatusFromSameResponseFilled) {
  const absl::Time now = kStart + absl::Minutes(30);
  std::vector<Observation> observations = FetchOk(*source_, Live(0, now));
  for (int status : fake_cloudflare::FakeModel::StatusCatalog()) {
    bool seen = false;
    for (absl::Time m = now - absl::Minutes(10); m < now - absl::Minutes(4);
         m += absl::Minutes(1)) {
      for (const auto& [s, v] : fake_->model().Final(0, m).statuses) {
        if (s == status) seen = true;
      }
    }
    if (!seen) continue;
    // Every settled minute has the status, with its value or 0.
    for (absl::Time m = now - absl::Minutes(10); m < now - absl::Minutes(4);
         m += absl::Minutes(1)) {
      uint64_t expected = 0;
      for (const auto& [s, v] : fake_->model().Final(0, m).statuses) {
        if (s == status) expected = v;
      }
      const auto values = AtBucket(observations, m);
      ASSERT_EQ(values.count(Series(status)), 1u) << status << " at " << m;
      EXPECT_EQ(values.at(Series(status)), expected) << status << " at " << m;
    }
  }
}

TEST_F(CloudflareZeroFillTest, NoZerosForMinutesNotReturned) {
  // The minute that has not ended is not returned, so nothing of it exists.
  const absl::Time now = kStart + absl::Minutes(30) + absl::Seconds(20);
  std::vector<Observation> observations = FetchOk(*source_, Live(0, now));
  ASSERT_FALSE(observations.empty());
  for (const Observation& observation : observations) {
    EXPECT_LT(observation.bucket_ms,
              absl::ToUnixMillis(kStart + absl::Minutes(30)));
  }
}

TEST_F(CloudflareZeroFillTest, NoZerosAfterAFailedCall) {
  FetchOk(*source_, Live(0, kStart + absl::Minutes(30)));
  ASSERT_TRUE(source_->NextTick(std::stop_token()).has_value());
  fake_->AddFault(FaultOf(FaultKind::kHttp503));
  std::vector<Observation> out;
  EXPECT_FALSE(harness::FetchAll(*source_, Live(0, kStart + absl::Minutes(31)), &out).ok());
  EXPECT_TRUE(out.empty());
}

// --- Row limit --------------------------------------------------------------

TEST_F(CloudflareSourceTest, RowLimitSplitsTheTimeRange) {
  StartFake(2);
  CloudflareOptions options = Options();
  options.metrics_allow = {"cloudflare_zone_requests_status_v2"};
  std::unique_ptr<CloudflareSource> reference = Make(options);
  options.row_limit = 12;  // one minute has at most 10 status rows
  std::unique_ptr<CloudflareSource> limited = Make(options);
  ASSERT_NE(reference, nullptr);
  ASSERT_NE(limited, nullptr);

  const FetchTask task = Live(0, kStart + absl::Minutes(30));
  std::vector<Observation> expected = FetchOk(*reference, task);
  std::vector<Observation> got = FetchOk(*limited, task);
  const auto sorted = [](std::vector<Observation> observations) {
    std::vector<std::string> lines;
    for (const Observation& o : observations) {
      lines.push_back(
          absl::StrCat(o.series.ToString(), "@", o.bucket_ms, "=", o.value));
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  EXPECT_EQ(sorted(got), sorted(expected));
  EXPECT_FALSE(got.empty());
  EXPECT_GT(limited->cloudflare_stats().row_limit_splits, 0u);
  EXPECT_EQ(limited->cloudflare_stats().failures_of(FailureCause::kTruncated),
            0u);
  for (const LoggedRequest& request : GraphqlRequests()) {
    EXPECT_GE(request.end - request.start, absl::Minutes(1));
  }
}

TEST_F(CloudflareSourceTest, FullSingleMinuteDropped) {
  StartFake(1);
  LogCapture logs;
  CloudflareOptions options = Options();
  options.metrics_allow = {"cloudflare_zone_requests_status_v2"};
  options.row_limit = 3;  // every minute has at least 5 status rows
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);

  FetchTask task = Live(0, kStart + absl::Minutes(30));
  task.range = {kStart + absl::Minutes(20), kStart + absl::Minutes(24)};
  std::vector<Observation> observations = FetchOk(*source, task);
  EXPECT_TRUE(observations.empty());
  EXPECT_EQ(source->cloudflare_stats().failures_of(FailureCause::kTruncated),
            4u);
  EXPECT_GE(logs.Count("dropping that minute"), 1u);
}

// --- Budget and metric selection --------------------------------------------

TEST_F(CloudflareSourceTest, LiveOverBudgetLogsErrorWithSuggestedInterval) {
  StartFake(30);
  LogCapture logs;
  CloudflareOptions options = Options();
  options.zones_per_query = 1;  // 30 zones x 3 datasets = 90 queries a tick
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->budget().verdict, BudgetPlan::Verdict::kLiveOverBudget);
  EXPECT_EQ(logs.Count("cannot hold the live lane"), 1u);
  EXPECT_EQ(logs.Count("--poll-interval=1m30s"), 1u);
}

TEST_F(CloudflareSourceTest, BackfillIsKeptInsideTheBudget) {
  StartFake(3);
  LogCapture logs;
  CloudflareOptions options = Options();
  options.lanes.max_backfill = absl::Hours(2);
  options.lanes.backfill_calls_per_tick = 5;
  options.query_budget = 40;  // 4 queries per 30 s tick; live takes 3
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->budget().verdict, BudgetPlan::Verdict::kBackfillSlowed);
  EXPECT_EQ(logs.Count("cannot hold the backfill lane"), 1u);

  for (int tick = 0; tick < 4; ++tick) {
    std::optional<TickPlan> plan = source->NextTick(std::stop_token());
    ASSERT_TRUE(plan.has_value());
    size_t live = 0;
    size_t other = 0;
    for (size_t i = 0; i < plan->tasks.size(); ++i) {
      EXPECT_EQ(plan->tasks[i].index, i);
      (plan->tasks[i].lane == Lane::kLive ? live : other) += 1;
    }
    EXPECT_EQ(live, 3u) << "tick " << tick;
    EXPECT_EQ(other, 1u) << "tick " << tick;
    for (const FetchTask& task : plan->tasks)
      source->OnTaskDone(task, absl::OkStatus());
  }
}

TEST_F(CloudflareSourceTest, DeniedDatasetIsNeverQueried) {
  StartFake(2);
  CloudflareOptions options = Options();
  options.metrics_deny = {"cloudflare_zone_dns_queries_total",
                          "cloudflare_zone_dns_stale_total",
                          "cloudflare_zone_dns_uncached_total",
                          "cloudflare_zone_bandwidth_country"};
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->partitions().size(), 2u);  // 1m and adaptive
  for (uint32_t p = 0; p < source->partitions().size(); ++p) {
    FetchOk(*source, Live(p, kStart + absl::Minutes(10)));
  }
  for (const LoggedRequest& request : GraphqlRequests()) {
    EXPECT_NE(request.dataset, "dnsAnalyticsAdaptiveGroups");
    EXPECT_FALSE(request.fields.contains("sum.countryMap.bytes"));
    if (request.dataset == "httpRequests1mGroups") {
      EXPECT_TRUE(request.fields.contains("sum.countryMap.requests"));
    }
  }
}

// --- Simulated clock --------------------------------------------------------

TEST_F(CloudflareSourceTest, SimulatedClockTicksUntilItsDuration) {
  StartFake(1);
  CloudflareOptions options = Options();
  options.clock_duration = absl::Minutes(2);
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);
  std::vector<absl::Time> nows;
  while (std::optional<TickPlan> plan = source->NextTick(std::stop_token())) {
    nows.push_back(plan->now);
    for (const FetchTask& task : plan->tasks) {
      EXPECT_EQ(task.now, plan->now);
      source->OnTaskDone(task, absl::OkStatus());
    }
  }
  ASSERT_EQ(nows.size(), 5u);  // 0s, 30s, 60s, 90s, 120s
  for (size_t i = 0; i < nows.size(); ++i) {
    EXPECT_EQ(nows[i], kStart + absl::Seconds(30) * static_cast<int64_t>(i));
  }
}

TEST_F(CloudflareSourceTest, WallClockFirstTickPlansBackfillNotAGap) {
  StartFake(1);
  CloudflareOptions options = Options();
  options.clock_start.reset();
  options.clock_duration = absl::ZeroDuration();
  options.lanes.max_backfill = absl::Minutes(30);
  options.lanes.backfill_calls_per_tick = 3;
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);

  // Time passes between the start and the first tick.
  clock_.Advance(absl::Seconds(2));
  std::optional<TickPlan> plan = source->NextTick(std::stop_token());
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->now, source->start());
  size_t backfill = 0;
  for (const FetchTask& task : plan->tasks) {
    EXPECT_NE(task.lane, Lane::kGap);
    if (task.lane == Lane::kBackfill) ++backfill;
  }
  EXPECT_EQ(backfill, 3u);
}

// --- Cluster ----------------------------------------------------------------

TEST_F(CloudflareSourceTest, ClusterMembersQueryEveryZoneOnce) {
  StartFake(25);
  for (uint32_t members : {2u, 3u}) {
    std::map<std::string, int> owners;
    for (uint32_t index = 0; index < members; ++index) {
      CloudflareOptions options = Options();
      options.metrics_allow = {"cloudflare_zone_requests_status_v2"};
      options.cluster_members = members;
      options.cluster_member_index = index;
      std::unique_ptr<CloudflareSource> source = Make(options);
      ASSERT_NE(source, nullptr);
      for (const Partition& partition : source->partitions()) {
        for (const ZoneInfo& zone : partition.zones) ++owners[zone.id];
      }
    }
    EXPECT_EQ(owners.size(), 25u) << members << " members";
    for (const auto& [id, count] : owners) EXPECT_EQ(count, 1) << id;
  }
}

// --- Secrets ----------------------------------------------------------------

TEST_F(CloudflareSourceTest, TokenNeverReachesLogsOrStatuses) {
  StartFake(4, 2);
  LogCapture logs;
  CloudflareOptions options = Options();
  options.timeout = absl::Milliseconds(300);
  options.zones_per_query = 2;
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);

  std::vector<std::string> messages;
  absl::Time now = kStart + absl::Minutes(10);
  for (FaultKind kind :
       {FaultKind::kEchoCredentials, FaultKind::kHttp429,
        FaultKind::kBudgetExceeded, FaultKind::kHttp503, FaultKind::kHtml502,
        FaultKind::kSlow, FaultKind::kTruncatedJson, FaultKind::kNotJson,
        FaultKind::kGraphqlError, FaultKind::kZoneDenied}) {
    Fault fault = FaultOf(kind);
    fault.retry_after_seconds = 1;
    fault.delay = absl::Seconds(2);
    fault.zone_id = fake_->zones()[0].id;
    fake_->AddFault(fault);
    for (uint32_t p = 0; p < source->partitions().size(); ++p) {
      std::vector<Observation> out;
      messages.emplace_back(harness::FetchAll(*source, Live(p, now), &out).ToString());
    }
    clock_.Advance(absl::Minutes(10));  // past any pause
    now += absl::Minutes(1);
  }
  source.reset();  // logs the counters

  ASSERT_GT(logs.Lines().size(), 5u);
  bool echoed = false;
  for (const std::string& message : messages) {
    EXPECT_FALSE(absl::StrContains(message, kToken)) << message;
    if (absl::StrContains(message, "Bearer REDACTED")) echoed = true;
  }
  EXPECT_TRUE(echoed) << "the echo fault should have been redacted";
  for (const std::string& line : logs.Lines()) {
    EXPECT_FALSE(absl::StrContains(line, kToken)) << line;
  }
  // The fake did receive the token, so the check above is not vacuous.
  bool sent = false;
  for (const LoggedRequest& request : fake_->requests()) {
    if (absl::StrContains(request.authorization, kToken)) sent = true;
  }
  EXPECT_TRUE(sent);
}

TEST_F(CloudflareSourceTest, LegacyKeyNeverReachesStatuses) {
  FakeOptions fake_options;
  fake_options.zones = fake_cloudflare::MakeZones(2);
  fake_options.email = "me@example.com";
  fake_options.api_key = "KEY-SECRET-77aa";
  fake_options.start = kStart;
  absl::StatusOr<std::unique_ptr<FakeCloudflare>> fake =
      FakeCloudflare::Start(fake_options);
  ASSERT_TRUE(fake.ok()) << fake.status();
  fake_ = *std::move(fake);

  CloudflareOptions options = Options();
  options.credentials = {"", "me@example.com", "KEY-SECRET-77aa"};
  std::unique_ptr<CloudflareSource> source = Make(options);
  ASSERT_NE(source, nullptr);
  fake_->AddFault(FaultOf(FaultKind::kEchoCredentials));
  std::vector<Observation> out;
  absl::Status status =
      harness::FetchAll(*source, Live(0, kStart + absl::Minutes(10)), &out);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(absl::StrContains(status.message(), "KEY-SECRET-77aa"))
      << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "REDACTED")) << status;
}

}  // namespace
}  // namespace converge::cloudflare

// Unit tests of the cloudflare source's parts that need no server: metric
// selection, query building, response parsing and error classification,
// zone listing pages, cluster ownership, the budget plan, zero fill,
// credentials and URL checks.

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "converge/sources.h"
#include "sources/cloudflare_budget.h"
#include "sources/cloudflare_client.h"
#include "sources/cloudflare_metrics.h"
#include "sources/cloudflare_observations.h"
#include "sources/cloudflare_query.h"
#include "sources/cloudflare_response.h"
#include "sources/cloudflare_zones.h"

namespace converge::cloudflare {
namespace {

absl::Time At(const char* text) {
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &time, &error))
      << error;
  return time;
}

int64_t Ms(const char* text) { return absl::ToUnixMillis(At(text)); }

// "name{a=1,b=2}" for an observation, labels sorted.
std::string Describe(const Observation& observation) {
  return observation.series.ToString();
}

// value of `series` (as Describe prints it) at `bucket`, or -1.
int64_t ValueOf(const std::vector<Observation>& observations,
                const std::string& series, int64_t bucket_ms) {
  for (const Observation& observation : observations) {
    if (Describe(observation) == series && observation.bucket_ms == bucket_ms) {
      return static_cast<int64_t>(observation.value);
    }
  }
  return -1;
}

// --- Metrics ----------------------------------------------------------------

TEST(CloudflareMetricsTest, EmptyAllowListSelectsEverything) {
  absl::StatusOr<MetricSet> set = ResolveMetricSet({}, {});
  ASSERT_TRUE(set.ok()) << set.status();
  for (const MetricInfo& info : Metrics()) EXPECT_TRUE(set->Has(info.metric));
  for (int d = 0; d < kDatasetCount; ++d) {
    EXPECT_TRUE(set->NeedsDataset(static_cast<Dataset>(d)));
  }
}

TEST(CloudflareMetricsTest, DenyingEveryDnsMetricDropsTheDataset) {
  absl::StatusOr<MetricSet> set =
      ResolveMetricSet({}, {"cloudflare_zone_dns_queries_total",
                            "cloudflare_zone_dns_stale_total",
                            "cloudflare_zone_dns_uncached_total"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_FALSE(set->NeedsDataset(Dataset::kDns));
  EXPECT_TRUE(set->NeedsDataset(Dataset::kHttp1m));
  EXPECT_TRUE(set->NeedsDataset(Dataset::kHttpAdaptive));
}

TEST(CloudflareMetricsTest, AllowListSelectsOnlyItsMetrics) {
  absl::StatusOr<MetricSet> set =
      ResolveMetricSet({"cloudflare_zone_requests_status_v2"}, {});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->Has(Metric::kRequestsStatusAdaptive));
  EXPECT_FALSE(set->Has(Metric::kRequestsTotal));
  EXPECT_FALSE(set->NeedsDataset(Dataset::kHttp1m));
  EXPECT_FALSE(set->NeedsDataset(Dataset::kDns));
}

TEST(CloudflareMetricsTest, UnknownMetricIsRejectedWithTheKnownNames) {
  absl::StatusOr<MetricSet> set =
      ResolveMetricSet({"cloudflare_zone_requests_totl"}, {});
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(set.status().message(),
                                "cloudflare_zone_requests_totl"));
  EXPECT_TRUE(absl::StrContains(set.status().message(),
                                "cloudflare_zone_requests_total"));
}

TEST(CloudflareMetricsTest, DenyingEverythingIsRejected) {
  EXPECT_FALSE(ResolveMetricSet({"cloudflare_zone_requests_total"},
                                {"cloudflare_zone_requests_total"})
                   .ok());
}

TEST(CloudflareMetricsTest, CountryRegions) {
  EXPECT_EQ(CountryRegion("US"), "Americas");
  EXPECT_EQ(CountryRegion("DE"), "Europe");
  EXPECT_EQ(CountryRegion("JP"), "Asia");
  EXPECT_EQ(CountryRegion("ZA"), "Africa");
  EXPECT_EQ(CountryRegion("NZ"), "Oceania");
  EXPECT_EQ(CountryRegion("AQ"), "Antarctica");
  EXPECT_EQ(CountryRegion("XX"), "Unknown");
  EXPECT_EQ(CountryRegion("T1"), "Unknown");
  EXPECT_EQ(CountryRegion("us"), "Unknown");
  EXPECT_EQ(CountryRegion(""), "Unknown");
}

TEST(CloudflareMetricsTest, MetricNamesAreUniqueAndPublic) {
  std::vector<std::string> names = CloudflareMetricNames();
  EXPECT_EQ(names.size(), static_cast<size_t>(kMetricCount));
  std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size());
  for (const std::string& name : names) {
    EXPECT_TRUE(absl::StartsWith(name, "cloudflare_zone_")) << name;
  }
}

// --- Queries ----------------------------------------------------------------

TEST(CloudflareQueryTest, Http1mSelectsOnlyEnabledFields) {
  absl::StatusOr<MetricSet> set = ResolveMetricSet(
      {"cloudflare_zone_requests_total", "cloudflare_zone_requests_country"},
      {});
  ASSERT_TRUE(set.ok());
  const std::string query = BuildQueryText(Dataset::kHttp1m, *set);
  EXPECT_TRUE(absl::StrContains(query, "httpRequests1mGroups(limit: $limit"));
  EXPECT_TRUE(absl::StrContains(query, "zoneTag_in: $zoneTags"));
  EXPECT_TRUE(absl::StrContains(query, "datetime_geq: $start"));
  EXPECT_TRUE(absl::StrContains(query, "datetime_lt: $end"));
  EXPECT_TRUE(
      absl::StrContains(query, "countryMap { clientCountryName requests }"));
  EXPECT_FALSE(absl::StrContains(query, "cachedBytes"));
  EXPECT_FALSE(absl::StrContains(query, "responseStatusMap"));
  EXPECT_FALSE(absl::StrContains(query, "uniq"));
}

TEST(CloudflareQueryTest, DnsTotalsGroupByMinute) {
  absl::StatusOr<MetricSet> set =
      ResolveMetricSet({"cloudflare_zone_dns_stale_total"}, {});
  ASSERT_TRUE(set.ok());
  const std::string query = BuildQueryText(Dataset::kDns, *set);
  EXPECT_TRUE(absl::StrContains(query, "dimensions { datetimeMinute }"));
  EXPECT_TRUE(absl::StrContains(query, "sum { countStale }"));
  EXPECT_FALSE(absl::StrContains(query, "responseCode"));
}

TEST(CloudflareQueryTest, RequestBodyCarriesVariables) {
  const std::vector<std::string> tags = {"aaa", "b\"b"};
  const std::string body =
      BuildRequestBody("query {\n x }", tags, At("2026-06-01T00:00:00Z"),
                       At("2026-06-01T00:10:00Z"), 9999);
  EXPECT_EQ(body,
            "{\"query\":\"query {\\n x }\",\"variables\":{\"zoneTags\":"
            "[\"aaa\",\"b\\\"b\"],\"start\":\"2026-06-01T00:00:00Z\",\"end\":"
            "\"2026-06-01T00:10:00Z\",\"limit\":9999}}");
}

TEST(CloudflareQueryTest, ApiTimeIsUtcWholeSeconds) {
  EXPECT_EQ(FormatApiTime(At("2026-06-01T02:30:00+02:00")),
            "2026-06-01T00:30:00Z");
}

// --- Responses --------------------------------------------------------------

TEST(CloudflareResponseTest, ParsesHttp1mRows) {
  const char* body = R"({"data":{"viewer":{"zones":[{"zoneTag":"z1",
    "httpRequests1mGroups":[{"dimensions":{"datetime":"2026-06-01T00:01:00Z"},
      "uniq":{"uniques":7},
      "sum":{"requests":100,"cachedRequests":60,"bytes":3000.0,
             "countryMap":[{"clientCountryName":"US","requests":90,"bytes":1,"threats":2}],
             "responseStatusMap":[{"edgeResponseStatus":200,"requests":95}],
             "browserMap":[{"uaBrowserFamily":"Chrome","pageViews":4}],
             "threatPathingMap":[{"threatPathingName":"bic.ban.unknown","requests":2}],
             "contentTypeMap":[{"edgeResponseContentTypeName":"html","requests":5,"bytes":50}]}}]}]}},
    "errors":null})";
  absl::StatusOr<GraphqlResponse> response =
      ParseGraphqlResponse(body, Dataset::kHttp1m);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->zones.size(), 1u);
  const ZoneRows& zone = response->zones[0];
  EXPECT_EQ(zone.zone_tag, "z1");
  ASSERT_EQ(zone.http1m.size(), 1u);

  const Http1mRow& row = zone.http1m[0];
  EXPECT_EQ(row.bucket_ms, Ms("2026-06-01T00:01:00Z"));
  EXPECT_EQ(row.requests, 100u);
  EXPECT_EQ(row.cached_requests, 60u);
  EXPECT_EQ(row.bytes, 3000u);
  EXPECT_EQ(row.encrypted_requests, 0u);  // not selected
  EXPECT_EQ(row.uniques, 7u);

  ASSERT_EQ(row.statuses.size(), 1u);
  EXPECT_EQ(row.statuses[0].key, "200");
  EXPECT_EQ(row.countries[0].threats, 2u);
  EXPECT_EQ(row.browsers[0].key, "Chrome");
  EXPECT_EQ(row.threat_paths[0].value, 2u);
  EXPECT_EQ(row.content_types[0].bytes, 50u);
}

TEST(CloudflareResponseTest, ErrorsArrayDecidesEvenWithData) {
  const char* body = R"({"data":{"viewer":{"zones":[]}},
    "errors":[{"message":"boom","path":null}]})";
  absl::StatusOr<GraphqlResponse> response =
      ParseGraphqlResponse(body, Dataset::kHttp1m);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->errors.size(), 1u);
  EXPECT_EQ(response->errors[0].message, "boom");
  EXPECT_FALSE(response->errors[0].zone_index.has_value());
  EXPECT_EQ(Classify(response->errors[0]), ErrorKind::kOther);
}

TEST(CloudflareResponseTest, ZoneIndexFromNumberOrString) {
  const char* body = R"({"data":null,"errors":[
    {"message":"zone 'a' does not have access to the path",
     "path":["viewer","zones","2","httpRequests1mGroups"],
     "extensions":{"code":"authz"}},
    {"message":"not authorized","path":["viewer","zones",0,"x"]}]})";
  absl::StatusOr<GraphqlResponse> response =
      ParseGraphqlResponse(body, Dataset::kHttp1m);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->errors.size(), 2u);
  EXPECT_EQ(response->errors[0].zone_index, 2u);
  EXPECT_EQ(response->errors[0].code, "authz");
  EXPECT_EQ(response->errors[1].zone_index, 0u);
  EXPECT_EQ(Classify(response->errors[0]), ErrorKind::kZone);
}

TEST(CloudflareResponseTest, ClassifiesRateLimitsFirst) {
  GraphqlError budget{"rate limiter budget depleted, try again after 5 minutes",
                      "", 1};
  EXPECT_EQ(Classify(budget), ErrorKind::kRateLimited);
  EXPECT_EQ(DelayInMessage(budget.message), absl::Minutes(5));
  GraphqlError quota{
      "quota exceeded, please repeat your request in the next minute", "",
      std::nullopt};
  EXPECT_EQ(Classify(quota), ErrorKind::kRateLimited);
  GraphqlError too_large{"limit reached, please try reduced time period", "",
                         std::nullopt};
  EXPECT_EQ(Classify(too_large), ErrorKind::kTooLarge);
  GraphqlError too_old{"cannot request data older than 2678400s", "", 0};
  EXPECT_EQ(Classify(too_old), ErrorKind::kTooOld);
  EXPECT_EQ(DelayInMessage("try again in 30 seconds"), absl::Seconds(30));
  EXPECT_FALSE(DelayInMessage("no delay here").has_value());
}

TEST(CloudflareResponseTest, HtmlAndTruncatedBodiesAreInvalid) {
  absl::StatusOr<GraphqlResponse> html = ParseGraphqlResponse(
      "<!DOCTYPE html><html><body>502</body></html>", Dataset::kHttp1m);
  ASSERT_FALSE(html.ok());
  EXPECT_TRUE(absl::StrContains(html.status().message(), "HTML"));
  EXPECT_TRUE(LooksLikeHtml("  <html>"));
  EXPECT_FALSE(
      ParseGraphqlResponse(R"({"data":{"viewer":{"zones":[{"zoneTag":")",
                           Dataset::kHttp1m)
          .ok());
}

TEST(CloudflareResponseTest, WrongTypeNamesThePath) {
  const char* body = R"({"data":{"viewer":{"zones":[{"zoneTag":"z",
    "httpRequestsAdaptiveGroups":[{"count":"many",
      "dimensions":{"datetimeMinute":"2026-06-01T00:01:00Z","edgeResponseStatus":200}}]}]}}})";
  absl::StatusOr<GraphqlResponse> response =
      ParseGraphqlResponse(body, Dataset::kHttpAdaptive);
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::StrContains(
      response.status().message(),
      "data.viewer.zones[0].httpRequestsAdaptiveGroups[0].count"))
      << response.status();
}

TEST(CloudflareResponseTest, BucketKeepsItsOffset) {
  const char* body = R"({"data":{"viewer":{"zones":[{"zoneTag":"z",
    "dnsAnalyticsAdaptiveGroups":[{"count":3,
      "dimensions":{"datetimeMinute":"2026-06-01T02:01:00+02:00","ipVersion":6}}]}]}}})";
  absl::StatusOr<GraphqlResponse> response =
      ParseGraphqlResponse(body, Dataset::kDns);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->zones[0].dns.size(), 1u);
  EXPECT_EQ(response->zones[0].dns[0].bucket_ms, Ms("2026-06-01T00:01:00Z"));
  EXPECT_EQ(response->zones[0].dns[0].ip_version, "6");
}

// --- Zones ------------------------------------------------------------------

TEST(CloudflareZonesTest, ParsesPageAndPlans) {
  const char* body = R"({"success":true,"errors":[],"messages":[],
    "result":[
      {"id":"a1","name":"free.example","status":"active",
       "plan":{"name":"Free Website","price":0,"legacy_id":"free"}},
      {"id":"b2","name":"paid.example","status":"active",
       "plan":{"name":"Enterprise Website","price":5000,"legacy_id":"enterprise"}},
      {"id":"c3","name":"old.example","status":"pending",
       "plan":{"name":"Free Website","price":0}}],
    "result_info":{"page":2,"per_page":3,"total_pages":4,"count":3,"total_count":11}})";
  absl::StatusOr<ZonesPage> page = ParseZonesPage(body);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->page, 2);
  EXPECT_EQ(page->total_pages, 4);
  ASSERT_EQ(page->zones.size(), 3u);
  EXPECT_TRUE(page->zones[0].free_plan);
  EXPECT_FALSE(page->zones[1].free_plan);
  EXPECT_EQ(page->zones[1].plan, "enterprise");
  EXPECT_TRUE(page->zones[2].free_plan);  // by name and price
  EXPECT_EQ(page->zones[2].status, "pending");
}

TEST(CloudflareZonesTest, ApiFailureCarriesItsMessage) {
  absl::StatusOr<ZonesPage> page = ParseZonesPage(
      R"({"success":false,"errors":[{"code":10000,"message":"Authentication error"}]})");
  ASSERT_FALSE(page.ok());
  EXPECT_TRUE(
      absl::StrContains(page.status().message(), "Authentication error"));
}

TEST(CloudflareZonesTest, SelectionExclusions) {
  std::vector<ZoneInfo> zones = {
      {"id1", "one.example", "active", "pro", false},
      {"id2", "two.example", "active", "pro", false},
      {"id3", "three.example", "pending", "pro", false},
      {"id4", "four.example", "active", "pro", false},
      {"id1", "one.example", "active", "pro", false},  // listed twice
  };
  ZoneSelection selection = SelectZones(zones, {"id2", "four.example"}, 1, 0);
  ASSERT_EQ(selection.zones.size(), 1u);
  EXPECT_EQ(selection.zones[0].id, "id1");
  EXPECT_EQ(selection.excluded, 2u);
  EXPECT_EQ(selection.inactive, 1u);
  EXPECT_EQ(selection.not_owned, 0u);
}

TEST(CloudflareZonesTest, ClusterMembersOwnEveryZoneOnce) {
  std::vector<ZoneInfo> zones;
  for (int i = 0; i < 1000; ++i) {
    zones.push_back({absl::StrCat("zone", i, "id"), absl::StrCat("z", i),
                     "active", "pro", false});
  }
  for (uint32_t members : {1u, 2u, 3u, 7u, 16u}) {
    std::map<std::string, int> owners;
    size_t smallest = zones.size();
    for (uint32_t index = 0; index < members; ++index) {
      ZoneSelection selection = SelectZones(zones, {}, members, index);
      smallest = std::min(smallest, selection.zones.size());
      EXPECT_EQ(selection.zones.size() + selection.not_owned, zones.size());
      for (const ZoneInfo& zone : selection.zones) ++owners[zone.id];
    }
    EXPECT_EQ(owners.size(), zones.size()) << members << " members";
    for (const auto& [id, count] : owners) {
      EXPECT_EQ(count, 1) << id << " with " << members << " members";
    }
    // Hashing spreads the zones: no member gets less than half its share.
    EXPECT_GE(smallest * members * 2, zones.size()) << members << " members";
  }
}

TEST(CloudflareZonesTest, OwnerStableWhenClusterGrows) {
  size_t moved = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = absl::StrCat("zone", i);
    EXPECT_EQ(ZoneOwner(id, 4), ZoneOwner(id, 4));
    const uint32_t before = ZoneOwner(id, 4);
    const uint32_t after = ZoneOwner(id, 5);
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, 4u) << "a moved zone goes to the new member";
    }
  }
  // About 1/5 of the zones move to the new member.
  EXPECT_GT(moved, 100u);
  EXPECT_LT(moved, 300u);
}

// --- Budget -----------------------------------------------------------------

TEST(CloudflareBudgetTest, FitsWithinBudget) {
  BudgetPlan plan = PlanBudget(6, 1, absl::Seconds(30), 300);
  EXPECT_EQ(plan.verdict, BudgetPlan::Verdict::kFits);
  EXPECT_DOUBLE_EQ(plan.budget_per_tick, 30.0);
  EXPECT_DOUBLE_EQ(plan.backfill_allowed_per_tick, 1.0);
  EXPECT_DOUBLE_EQ(plan.needed_per_window, 70.0);
}

TEST(CloudflareBudgetTest, LiveOverBudgetSuggestsPollInterval) {
  // 90 queries every 30 s is 900 per 5 minutes.
  BudgetPlan plan = PlanBudget(90, 1, absl::Seconds(30), 300);
  EXPECT_EQ(plan.verdict, BudgetPlan::Verdict::kLiveOverBudget);
  EXPECT_EQ(plan.suggested_poll_interval, absl::Seconds(90));
  EXPECT_DOUBLE_EQ(plan.backfill_allowed_per_tick, 0.0);
  EXPECT_TRUE(
      absl::StrContains(plan.Describe(absl::Seconds(30), 300), "900 per 5m"));
}

TEST(CloudflareBudgetTest, BackfillSlowedToWhatIsLeft) {
  // 40 per 5 minutes is 4 per 30 s tick; live takes 3.
  BudgetPlan plan = PlanBudget(3, 5, absl::Seconds(30), 40);
  EXPECT_EQ(plan.verdict, BudgetPlan::Verdict::kBackfillSlowed);
  EXPECT_DOUBLE_EQ(plan.backfill_allowed_per_tick, 1.0);
}

TEST(CloudflareBudgetTest, AllowancePacesFractions) {
  BackfillAllowance allowance(0.5, 3);
  std::vector<int> calls;
  for (int tick = 0; tick < 6; ++tick) {
    const int allowed = allowance.StartTick();
    calls.push_back(allowed);
    allowance.Spend(allowed);
  }
  EXPECT_EQ(calls, (std::vector<int>{0, 1, 0, 1, 0, 1}));
}

TEST(CloudflareBudgetTest, AllowanceNeverExceedsTheCap) {
  BackfillAllowance allowance(10, 2);
  for (int tick = 0; tick < 5; ++tick) {
    const int allowed = allowance.StartTick();
    EXPECT_EQ(allowed, 2);
    allowance.Spend(allowed);
  }
}

TEST(CloudflareBudgetTest, UnspentAllowanceDoesNotPileUp) {
  BackfillAllowance allowance(1, 2);
  for (int tick = 0; tick < 10; ++tick) allowance.StartTick();  // none spent
  EXPECT_EQ(allowance.StartTick(), 2);
}

// --- Zero fill --------------------------------------------------------------

ZoneRows AdaptiveRows(
    const std::vector<std::tuple<const char*, const char*, uint64_t>>& rows) {
  ZoneRows zone;
  zone.zone_tag = "z";
  for (const auto& [minute, status, count] : rows) {
    zone.adaptive.push_back({Ms(minute), status, count});
  }
  return zone;
}

std::vector<Observation> FlattenOne(const ZoneRows& rows,
                                    KnownStatuses::StatusSet known,
                                    Dataset dataset, ZoneOutput* output_copy) {
  std::vector<ZoneInput> inputs = {{&rows, "zone.example", std::move(known)}};
  std::vector<ZoneOutput> outputs =
      FlattenZones(inputs, dataset, MetricSet::All());
  EXPECT_EQ(outputs.size(), 1u);
  EXPECT_TRUE(outputs[0].status.ok()) << outputs[0].status;
  if (output_copy != nullptr) *output_copy = outputs[0];
  std::vector<Observation> observations;
  outputs[0].observations.AppendTo(&observations);
  return observations;
}

constexpr char kStatus503[] =
    "cloudflare_zone_requests_status_v2{status=\"503\",zone=\"zone.example\"}";

TEST(CloudflareZeroFillTest, StatusFromSameResponse) {
  const ZoneRows rows = AdaptiveRows({{"2026-06-01T00:01:00Z", "200", 10},
                                      {"2026-06-01T00:01:00Z", "503", 2},
                                      {"2026-06-01T00:02:00Z", "200", 12}});
  ZoneOutput output;
  std::vector<Observation> observations =
      FlattenOne(rows, {}, Dataset::kHttpAdaptive, &output);
  EXPECT_EQ(ValueOf(observations, kStatus503, Ms("2026-06-01T00:01:00Z")), 2);
  EXPECT_EQ(ValueOf(observations, kStatus503, Ms("2026-06-01T00:02:00Z")), 0);
  EXPECT_EQ(output.zero_filled, 1u);
  EXPECT_EQ(output.seen, (KnownStatuses::StatusSet{"200", "503"}));
}

TEST(CloudflareZeroFillTest, StatusKnownFromEarlierTickIsZero) {
  const ZoneRows rows = AdaptiveRows({{"2026-06-01T00:05:00Z", "200", 10}});
  std::vector<Observation> observations =
      FlattenOne(rows, {"200", "503"}, Dataset::kHttpAdaptive, nullptr);
  EXPECT_EQ(ValueOf(observations, kStatus503, Ms("2026-06-01T00:05:00Z")), 0);
}

TEST(CloudflareZeroFillTest, NoZeroForMinutesNotReturned) {
  const ZoneRows rows = AdaptiveRows({{"2026-06-01T00:05:00Z", "503", 1}});
  std::vector<Observation> observations =
      FlattenOne(rows, {"200"}, Dataset::kHttpAdaptive, nullptr);
  // Only the returned minute exists, for both statuses.
  ASSERT_EQ(observations.size(), 2u);
  for (const Observation& observation : observations) {
    EXPECT_EQ(observation.bucket_ms, Ms("2026-06-01T00:05:00Z"));
  }
}

TEST(CloudflareZeroFillTest, NoZeroForStatusNeverSeen) {
  const ZoneRows rows = AdaptiveRows({{"2026-06-01T00:05:00Z", "200", 10}});
  std::vector<Observation> observations =
      FlattenOne(rows, {}, Dataset::kHttpAdaptive, nullptr);
  ASSERT_EQ(observations.size(), 1u);
  EXPECT_EQ(ValueOf(observations, kStatus503, Ms("2026-06-01T00:05:00Z")), -1);
}

TEST(CloudflareZeroFillTest, OnlyStatusMapFilled) {
  ZoneRows rows;
  rows.zone_tag = "z";
  Http1mRow first;
  first.bucket_ms = Ms("2026-06-01T00:01:00Z");
  first.requests = 12;
  first.statuses = {{"200", 10}, {"404", 2}};
  first.countries = {{"US", 10, 100, 0}, {"DE", 2, 20, 0}};
  Http1mRow second;
  second.bucket_ms = Ms("2026-06-01T00:02:00Z");
  second.requests = 5;
  second.statuses = {{"200", 5}};
  second.countries = {{"US", 5, 50, 0}};
  rows.http1m = {first, second};

  std::vector<Observation> observations =
      FlattenOne(rows, {}, Dataset::kHttp1m, nullptr);
  EXPECT_EQ(
      ValueOf(observations,
              "cloudflare_zone_requests_status{status=\"404\",zone=\"zone."
              "example\"}",
              second.bucket_ms),
      0);
  EXPECT_EQ(ValueOf(observations,
                    "cloudflare_zone_requests_country{country=\"DE\",region="
                    "\"Europe\",zone=\"zone.example\"}",
                    second.bucket_ms),
            -1);
  EXPECT_EQ(ValueOf(observations,
                    "cloudflare_zone_requests_total{zone=\"zone.example\"}",
                    second.bucket_ms),
            5);
}

TEST(CloudflareZeroFillTest, RecordedStatusesCountFromNextCommit) {
  KnownStatuses known;
  known.Record("z", Dataset::kHttpAdaptive, {"503"});
  EXPECT_TRUE(known.Committed("z", Dataset::kHttpAdaptive).empty());
  known.Commit();
  EXPECT_EQ(known.Committed("z", Dataset::kHttpAdaptive),
            (KnownStatuses::StatusSet{"503"}));
  EXPECT_TRUE(known.Committed("z", Dataset::kHttp1m).empty());
  EXPECT_TRUE(known.Committed("other", Dataset::kHttpAdaptive).empty());
}

TEST(CloudflareObservationsTest, DnsRepeatedGroupsAddUp) {
  ZoneRows rows;
  rows.zone_tag = "z";
  rows.dns.push_back(
      {Ms("2026-06-01T00:01:00Z"), "NOERROR", "A", "4", 3, 1, 2});
  rows.dns.push_back(
      {Ms("2026-06-01T00:01:00Z"), "NOERROR", "A", "4", 4, 0, 1});
  std::vector<Observation> observations =
      FlattenOne(rows, {}, Dataset::kDns, nullptr);
  const int64_t bucket = Ms("2026-06-01T00:01:00Z");
  EXPECT_EQ(
      ValueOf(observations,
              "cloudflare_zone_dns_queries_total{ip_version=\"4\",query_"
              "type=\"A\",response_code=\"NOERROR\",zone=\"zone.example\"}",
              bucket),
      7);
  EXPECT_EQ(
      ValueOf(observations,
              "cloudflare_zone_dns_stale_total{zone=\"zone.example\"}", bucket),
      1);
  EXPECT_EQ(ValueOf(observations,
                    "cloudflare_zone_dns_uncached_total{zone=\"zone.example\"}",
                    bucket),
            3);
  EXPECT_EQ(observations.size(), 3u);
}

TEST(CloudflareObservationsTest, ManyZonesKeepTheirOrder) {
  // Enough rows for the parallel path; the output order is the input order.
  std::vector<ZoneRows> zones(8);
  std::vector<ZoneInput> inputs;
  for (size_t z = 0; z < zones.size(); ++z) {
    zones[z].zone_tag = absl::StrCat("z", z);
    for (int minute = 0; minute < 400; ++minute) {
      zones[z].adaptive.push_back(
          {Ms("2026-06-01T00:00:00Z") + minute * 60000, "200", z + 1});
    }
    inputs.push_back({&zones[z], absl::StrCat("zone", z), {}});
  }
  std::vector<ZoneOutput> outputs =
      FlattenZones(inputs, Dataset::kHttpAdaptive, MetricSet::All());
  ASSERT_EQ(outputs.size(), zones.size());
  for (size_t z = 0; z < zones.size(); ++z) {
    ASSERT_EQ(outputs[z].observations.size(), 400u);
    EXPECT_EQ(outputs[z].observations[0].value, z + 1);
  }
}

// --- Credentials and URLs ---------------------------------------------------

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"CF_API_TOKEN", "CF_API_EMAIL", "CF_API_KEY"}) {
      const char* value = getenv(name);
      saved_[name] = value == nullptr ? std::optional<std::string>()
                                      : std::optional<std::string>(value);
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value.has_value()) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

  std::map<std::string, std::optional<std::string>> saved_;
};

TEST_F(CredentialsTest, TokenFromEnvironment) {
  setenv("CF_API_TOKEN", " tok \n", 1);
  absl::StatusOr<CloudflareCredentials> credentials =
      LoadCloudflareCredentials("");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->api_token, "tok");
}

TEST_F(CredentialsTest, FileWinsOverEnvironment) {
  setenv("CF_API_TOKEN", "from-env", 1);
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/token-", getpid());
  std::ofstream(path) << "from-file\n";
  absl::StatusOr<CloudflareCredentials> credentials =
      LoadCloudflareCredentials(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->api_token, "from-file");
}

TEST_F(CredentialsTest, MissingFileNamesThePath) {
  absl::StatusOr<CloudflareCredentials> credentials =
      LoadCloudflareCredentials("/nonexistent/token");
  ASSERT_FALSE(credentials.ok());
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(
      absl::StrContains(credentials.status().message(), "/nonexistent/token"));
}

TEST_F(CredentialsTest, LegacyKeyPairNeedsBoth) {
  setenv("CF_API_EMAIL", "me@example.com", 1);
  EXPECT_FALSE(LoadCloudflareCredentials("").ok());
  setenv("CF_API_KEY", "key", 1);
  absl::StatusOr<CloudflareCredentials> credentials =
      LoadCloudflareCredentials("");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->email, "me@example.com");
  EXPECT_EQ(credentials->api_key, "key");
  EXPECT_TRUE(credentials->api_token.empty());
}

TEST_F(CredentialsTest, NothingSetIsAClearError) {
  absl::StatusOr<CloudflareCredentials> credentials =
      LoadCloudflareCredentials("");
  ASSERT_FALSE(credentials.ok());
  EXPECT_TRUE(
      absl::StrContains(credentials.status().message(), "CF_API_TOKEN"));
}

TEST(CloudflareClientTest, PlainHttpOnlyForLoopback) {
  EXPECT_TRUE(ValidateApiUrl("cf-api-url",
                             "https://api.cloudflare.com/client/v4/graphql")
                  .ok());
  EXPECT_TRUE(
      ValidateApiUrl("cf-api-url", "http://127.0.0.1:8787/client/v4/graphql")
          .ok());
  EXPECT_TRUE(ValidateApiUrl("cf-api-url", "http://localhost:1/x").ok());
  EXPECT_TRUE(ValidateApiUrl("cf-api-url", "http://[::1]:1/x").ok());
  absl::Status plain =
      ValidateApiUrl("cf-api-url", "http://api.example.com/graphql");
  EXPECT_FALSE(plain.ok());
  EXPECT_TRUE(absl::StrContains(plain.message(), "--cf-api-url"));
  EXPECT_FALSE(ValidateApiUrl("cf-api-url", "ftp://127.0.0.1/x").ok());
  EXPECT_FALSE(ValidateApiUrl("cf-api-url", "not a url").ok());
}

TEST(CloudflareClientTest, RetryAfterSecondsAndDate) {
  const absl::Time now = At("2026-06-01T00:00:00Z");
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter("Mon, 01 Jun 2026 00:01:00 GMT", now),
            absl::Minutes(1));
  EXPECT_EQ(ParseRetryAfter("Sun, 31 May 2026 00:01:00 GMT", now),
            absl::ZeroDuration());
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
}

TEST(CloudflareClientTest, RedactRemovesSecrets) {
  CloudflareClient token_client({"tok-123", "", ""}, absl::Seconds(1));
  EXPECT_EQ(token_client.Redact("Bearer tok-123 and tok-123"),
            "Bearer REDACTED and REDACTED");
  CloudflareClient key_client({"", "me@example.com", "key-456"},
                              absl::Seconds(1));
  EXPECT_EQ(key_client.Redact("X-Auth-Key: key-456"), "X-Auth-Key: REDACTED");
}

TEST(CloudflareOptionsTest, ValidationNamesTheField) {
  CloudflareOptions options;
  options.credentials.api_token = "t";
  EXPECT_TRUE(ValidateCloudflareOptions(options).ok());

  CloudflareOptions bad = options;
  bad.zones_per_query = 11;
  EXPECT_TRUE(absl::StrContains(ValidateCloudflareOptions(bad).message(),
                                "zones_per_query"));
  bad = options;
  bad.cluster_member_index = 1;
  EXPECT_TRUE(absl::StrContains(ValidateCloudflareOptions(bad).message(),
                                "cluster_member_index"));
  bad = options;
  bad.zones = {"../etc"};
  EXPECT_TRUE(
      absl::StrContains(ValidateCloudflareOptions(bad).message(), "zone ID"));
  bad = options;
  bad.credentials = {};
  EXPECT_TRUE(absl::StrContains(ValidateCloudflareOptions(bad).message(),
                                "credentials"));
  bad = options;
  bad.clock_start = At("2026-06-01T00:00:00Z");
  EXPECT_TRUE(absl::StrContains(ValidateCloudflareOptions(bad).message(),
                                "clock_duration"));
  bad = options;
  bad.row_limit = 10000;
  EXPECT_TRUE(
      absl::StrContains(ValidateCloudflareOptions(bad).message(), "row_limit"));
}

}  // namespace
}  // namespace converge::cloudflare

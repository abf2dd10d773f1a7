#include "tests/fake_cloudflare/fake_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace converge::fake_cloudflare {
namespace {

// splitmix64's finalizer: a cheap bijective mix with good avalanche.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Hash(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0,
              uint64_t d = 0) {
  uint64_t h = Mix(seed);
  for (uint64_t part : {a, b, c, d}) h = Mix(h ^ part);
  return h;
}

// Uniform in [0, 1).
double Unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// Purposes of the draws, so they come from unrelated streams.
enum Draw : uint64_t {
  kZoneSize = 1,
  kTraffic,
  kStatusShare,
  kStatusPresent,
  kSplit,
  kDnsShare,
  kDnsPresent,
};

struct Share {
  const char* key;
  double share;
  bool rare;  // present in about half of the minutes
};

constexpr std::array<std::pair<int, Share>, 10> kStatuses = {{
    {200, {"", 0.70, false}},
    {304, {"", 0.10, false}},
    {404, {"", 0.08, false}},
    {301, {"", 0.05, false}},
    {403, {"", 0.03, false}},
    {500, {"", 0.010, true}},
    {502, {"", 0.006, true}},
    {503, {"", 0.004, true}},
    {429, {"", 0.003, true}},
    {206, {"", 0.002, true}},
}};
constexpr std::array<Share, 5> kContentTypes = {{
    {"html", 0.35, false},
    {"json", 0.25, false},
    {"javascript", 0.2, false},
    {"css", 0.1, false},
    {"png", 0.1, false},
}};
constexpr std::array<Share, 9> kCountries = {{
    {"US", 0.4, false},
    {"DE", 0.15, false},
    {"GB", 0.1, false},
    {"JP", 0.1, false},
    {"BR", 0.08, false},
    {"IN", 0.08, false},
    {"AU", 0.05, false},
    {"ZA", 0.03, false},
    {"XX", 0.01, true},
}};
// The region of each country above, as the exporters label it.
constexpr std::array<std::pair<const char*, const char*>, 9> kRegions = {{
    {"US", "Americas"},
    {"DE", "Europe"},
    {"GB", "Europe"},
    {"JP", "Asia"},
    {"BR", "Americas"},
    {"IN", "Asia"},
    {"AU", "Oceania"},
    {"ZA", "Africa"},
    {"XX", "Unknown"},
}};
constexpr std::array<Share, 4> kBrowsers = {{
    {"Chrome", 0.6, false},
    {"Safari", 0.25, false},
    {"Firefox", 0.1, false},
    {"Edge", 0.05, true},
}};
constexpr std::array<Share, 2> kThreatPaths = {{
    {"bic.ban.unknown", 0.003, true},
    {"hot.ban.unknown", 0.002, true},
}};
constexpr std::array<const char*, 3> kResponseCodes = {"NOERROR", "NXDOMAIN",
                                                       "SERVFAIL"};
constexpr std::array<const char*, 4> kQueryTypes = {"A", "AAAA", "MX", "TXT"};
constexpr std::array<const char*, 2> kIpVersions = {"4", "6"};

// The share of the final value shown at each whole minute of age.
double StageShare(absl::Duration age) {
  const int64_t minutes = age / absl::Minutes(1);
  if (minutes <= 0) return 0;
  if (minutes == 1) return 0.04;
  if (minutes == 2) return 0.45;
  if (minutes == 3) return 0.90;
  return 1.0;
}

// Every count that is not 0 is at least 3, so the four stages of a minute
// (floor of 4%, 45%, 90% and 100%) show four different values. An exporter
// that polls twice per stage with a threshold of 3 then never settles on a
// stage before the final value, and an end-to-end run stores exactly the
// final values. Smaller counts would settle early and be corrected later,
// which the engine tests cover.
uint64_t Count(uint64_t value) {
  return value == 0 ? 0 : std::max<uint64_t>(value, 3);
}

uint64_t Scaled(uint64_t value, double share) {
  return static_cast<uint64_t>(std::floor(static_cast<double>(value) * share));
}

const char* RegionOf(const std::string& code) {
  for (const auto& [country, region] : kRegions) {
    if (code == country) return region;
  }
  return "Unknown";
}

}  // namespace

std::vector<FakeZone> MakeZones(int count, int free_every, uint64_t seed) {
  std::vector<FakeZone> zones;
  for (int i = 0; i < count; ++i) {
    FakeZone zone;
    char id[33];
    std::snprintf(id, sizeof(id), "%016llx%016llx",
                  static_cast<unsigned long long>(Hash(seed, 101, i)),
                  static_cast<unsigned long long>(Hash(seed, 202, i)));
    zone.id = id;
    zone.name = absl::StrCat("zone-", i, ".example");
    if (free_every > 0 && (i + 1) % free_every == 0) zone.plan = "free";
    zones.push_back(std::move(zone));
  }
  return zones;
}

const std::vector<int>& FakeModel::StatusCatalog() {
  static const std::vector<int>* const catalog = [] {
    auto* statuses = new std::vector<int>;
    for (const auto& [status, share] : kStatuses) statuses->push_back(status);
    return statuses;
  }();
  return *catalog;
}

MinuteData FakeModel::Final(size_t zone_index, absl::Time minute_start) const {
  const auto minute =
      static_cast<uint64_t>(absl::ToUnixSeconds(minute_start) / 60);
  const uint64_t zone = zone_index;
  MinuteData data;

  // Zones differ in size; minutes vary around it.
  const double size = 0.2 + 1.8 * Unit(Hash(seed_, kZoneSize, zone));
  const double traffic =
      (2000 + 3000 * Unit(Hash(seed_, kTraffic, zone, minute))) * size;

  // Statuses make up the requests; rare ones appear in about half the
  // minutes.
  for (size_t i = 0; i < kStatuses.size(); ++i) {
    const auto& [status, share] = kStatuses[i];
    if (share.rare && Hash(seed_, kStatusPresent, zone, minute, i) % 2 == 0) {
      continue;
    }
    const double noise =
        0.8 + 0.4 * Unit(Hash(seed_, kStatusShare, zone, minute, i));
    const uint64_t value =
        Count(static_cast<uint64_t>(traffic * share.share * noise) + 1);
    data.statuses.emplace_back(status, value);
    data.requests += value;
  }
  data.cached_requests = Count(Scaled(data.requests, 0.6));
  data.encrypted_requests = Count(Scaled(data.requests, 0.95));
  data.bytes = data.requests * 3000;
  data.cached_bytes = data.cached_requests * 2500;
  data.encrypted_bytes = data.encrypted_requests * 3000;
  data.page_views = Count(Scaled(data.requests, 0.15));
  data.uniques = Count(Scaled(data.requests, 0.05) + 1);

  // Breakdowns: shares of the requests with a little noise each.
  const auto part = [&](uint64_t salt, size_t i, double share) {
    const double noise =
        0.9 + 0.2 * Unit(Hash(seed_, kSplit, zone, minute, salt * 100 + i));
    return Count(static_cast<uint64_t>(static_cast<double>(data.requests) *
                                       share * noise));
  };
  const auto present = [&](uint64_t salt, size_t i, const Share& share) {
    return !share.rare ||
           Hash(seed_, kStatusPresent, zone, minute, salt * 100 + i) % 2 == 1;
  };
  for (size_t i = 0; i < kContentTypes.size(); ++i) {
    const uint64_t requests = part(1, i, kContentTypes[i].share);
    if (requests == 0) continue;
    data.content_types.push_back(
        {kContentTypes[i].key, requests, requests * 3000});
  }
  for (size_t i = 0; i < kThreatPaths.size(); ++i) {
    if (!present(2, i, kThreatPaths[i])) continue;
    const uint64_t requests = Count(part(2, i, kThreatPaths[i].share) + 1);
    data.threat_paths.emplace_back(kThreatPaths[i].key, requests);
    data.threats += requests;
  }
  for (size_t i = 0; i < kCountries.size(); ++i) {
    if (!present(3, i, kCountries[i])) continue;
    const uint64_t requests = Count(part(3, i, kCountries[i].share) + 1);
    // The threats fall on the first country.
    data.countries.push_back({kCountries[i].key, requests, requests * 3000,
                              i == 0 ? data.threats : 0});
  }
  for (size_t i = 0; i < kBrowsers.size(); ++i) {
    if (!present(4, i, kBrowsers[i])) continue;
    const uint64_t views =
        Count(static_cast<uint64_t>(static_cast<double>(data.page_views) *
                                    kBrowsers[i].share) +
              1);
    data.browsers.emplace_back(kBrowsers[i].key, views);
  }

  // DNS: 3 response codes x 4 query types x 2 IP versions, some absent.
  size_t group = 0;
  for (const char* response_code : kResponseCodes) {
    for (const char* query_type : kQueryTypes) {
      for (const char* ip_version : kIpVersions) {
        ++group;
        if (Hash(seed_, kDnsPresent, zone, minute, group) % 10 < 3) continue;
        const uint64_t count =
            Count(1 + static_cast<uint64_t>(
                          200 * size *
                          Unit(Hash(seed_, kDnsShare, zone, minute, group))));
        data.dns.push_back({response_code, query_type, ip_version, count,
                            Count(count / 20), Count(count / 5)});
      }
    }
  }
  return data;
}

std::optional<MinuteData> FakeModel::At(size_t zone_index,
                                        absl::Time minute_start,
                                        absl::Duration age) const {
  const double share = StageShare(age);
  if (share == 0) return std::nullopt;
  MinuteData data = Final(zone_index, minute_start);
  if (share == 1.0) return data;

  // Every number takes the stage's share; entries that drop to 0 vanish.
  for (uint64_t* value :
       {&data.requests, &data.cached_requests, &data.encrypted_requests,
        &data.bytes, &data.cached_bytes, &data.encrypted_bytes,
        &data.page_views, &data.threats, &data.uniques}) {
    *value = Scaled(*value, share);
  }
  std::vector<MinuteData::ContentType> content_types;
  for (MinuteData::ContentType entry : data.content_types) {
    entry.requests = Scaled(entry.requests, share);
    entry.bytes = Scaled(entry.bytes, share);
    if (entry.requests != 0 || entry.bytes != 0) content_types.push_back(entry);
  }
  data.content_types = std::move(content_types);
  std::vector<MinuteData::Country> countries;
  for (MinuteData::Country entry : data.countries) {
    entry.requests = Scaled(entry.requests, share);
    entry.bytes = Scaled(entry.bytes, share);
    entry.threats = Scaled(entry.threats, share);
    if (entry.requests != 0 || entry.bytes != 0 || entry.threats != 0) {
      countries.push_back(entry);
    }
  }
  data.countries = std::move(countries);
  const auto scale_pairs = [share](auto& pairs) {
    auto nonzero = pairs;
    nonzero.clear();
    for (auto [key, value] : pairs) {
      value = Scaled(value, share);
      if (value != 0) nonzero.emplace_back(key, value);
    }
    pairs = std::move(nonzero);
  };
  scale_pairs(data.statuses);
  scale_pairs(data.browsers);
  scale_pairs(data.threat_paths);
  std::vector<MinuteData::DnsGroup> dns;
  for (MinuteData::DnsGroup entry : data.dns) {
    entry.count = Scaled(entry.count, share);
    entry.stale = Scaled(entry.stale, share);
    entry.uncached = Scaled(entry.uncached, share);
    if (entry.count != 0) dns.push_back(entry);
  }
  data.dns = std::move(dns);
  return data;
}

std::vector<ExpectedPoint> ExpectedSeries(const FakeModel& model,
                                          const std::vector<FakeZone>& zones,
                                          absl::Time from, absl::Time to) {
  std::vector<ExpectedPoint> points;
  for (size_t zone_index = 0; zone_index < zones.size(); ++zone_index) {
    const FakeZone& zone = zones[zone_index];
    if (zone.status != "active") continue;
    for (absl::Time minute = from; minute < to; minute += absl::Minutes(1)) {
      const MinuteData data = model.Final(zone_index, minute);
      const int64_t ms = absl::ToUnixMillis(minute);
      const auto add = [&](const char* name, uint64_t value,
                           std::map<std::string, std::string> labels = {}) {
        labels["zone"] = zone.name;
        points.push_back({name, std::move(labels), ms, value});
      };

      // httpRequests1mGroups, not on the Free plan.
      if (!zone.free_plan()) {
        add("cloudflare_zone_requests_total", data.requests);
        add("cloudflare_zone_requests_cached", data.cached_requests);
        add("cloudflare_zone_requests_ssl_encrypted", data.encrypted_requests);
        add("cloudflare_zone_bandwidth_total", data.bytes);
        add("cloudflare_zone_bandwidth_cached", data.cached_bytes);
        add("cloudflare_zone_bandwidth_ssl_encrypted", data.encrypted_bytes);
        add("cloudflare_zone_pageviews_total", data.page_views);
        add("cloudflare_zone_threats_total", data.threats);
        add("cloudflare_zone_uniques_total", data.uniques);
        for (const auto& entry : data.content_types) {
          add("cloudflare_zone_requests_content_type", entry.requests,
              {{"content_type", entry.name}});
          add("cloudflare_zone_bandwidth_content_type", entry.bytes,
              {{"content_type", entry.name}});
        }
        for (const auto& entry : data.countries) {
          const std::map<std::string, std::string> labels = {
              {"country", entry.code}, {"region", RegionOf(entry.code)}};
          add("cloudflare_zone_requests_country", entry.requests, labels);
          add("cloudflare_zone_bandwidth_country", entry.bytes, labels);
          add("cloudflare_zone_threats_country", entry.threats, labels);
        }
        for (const auto& [status, requests] : data.statuses) {
          add("cloudflare_zone_requests_status", requests,
              {{"status", absl::StrCat(status)}});
        }
        for (const auto& [family, views] : data.browsers) {
          add("cloudflare_zone_requests_browser_map_page_views_count", views,
              {{"family", family}});
        }
        for (const auto& [type, requests] : data.threat_paths) {
          add("cloudflare_zone_threats_type", requests, {{"type", type}});
        }
      }

      // httpRequestsAdaptiveGroups, every plan.
      for (const auto& [status, requests] : data.statuses) {
        add("cloudflare_zone_requests_status_v2", requests,
            {{"status", absl::StrCat(status)}});
      }

      // dnsAnalyticsAdaptiveGroups.
      uint64_t stale = 0;
      uint64_t uncached = 0;
      for (const auto& group : data.dns) {
        add("cloudflare_zone_dns_queries_total", group.count,
            {{"response_code", group.response_code},
             {"query_type", group.query_type},
             {"ip_version", group.ip_version}});
        stale += group.stale;
        uncached += group.uncached;
      }
      if (!data.dns.empty()) {
        add("cloudflare_zone_dns_stale_total", stale);
        add("cloudflare_zone_dns_uncached_total", uncached);
      }
    }
  }
  return points;
}

bool IsZeroFillable(const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  if (name != "cloudflare_zone_requests_status" &&
      name != "cloudflare_zone_requests_status_v2") {
    return false;
  }
  auto it = labels.find("status");
  if (it == labels.end()) return false;
  for (int status : FakeModel::StatusCatalog()) {
    if (it->second == absl::StrCat(status)) return true;
  }
  return false;
}

}  // namespace converge::fake_cloudflare

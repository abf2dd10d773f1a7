#include "sources/cloudflare_metrics.h"

#include <algorithm>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace converge::cloudflare {
namespace {

const std::array<MetricInfo, kMetricCount> kMetrics = {{
    {Metric::kRequestsTotal, "cloudflare_zone_requests_total", Dataset::kHttp1m,
     "zone", "Requests of the zone"},
    {Metric::kRequestsCached, "cloudflare_zone_requests_cached",
     Dataset::kHttp1m, "zone", "Requests served from cache"},
    {Metric::kRequestsSslEncrypted, "cloudflare_zone_requests_ssl_encrypted",
     Dataset::kHttp1m, "zone", "Requests over TLS"},
    {Metric::kBandwidthTotal, "cloudflare_zone_bandwidth_total",
     Dataset::kHttp1m, "zone", "Bytes sent to clients"},
    {Metric::kBandwidthCached, "cloudflare_zone_bandwidth_cached",
     Dataset::kHttp1m, "zone", "Bytes served from cache"},
    {Metric::kBandwidthSslEncrypted, "cloudflare_zone_bandwidth_ssl_encrypted",
     Dataset::kHttp1m, "zone", "Bytes sent over TLS"},
    {Metric::kPageviewsTotal, "cloudflare_zone_pageviews_total",
     Dataset::kHttp1m, "zone", "Page views"},
    {Metric::kThreatsTotal, "cloudflare_zone_threats_total", Dataset::kHttp1m,
     "zone", "Requests classified as threats"},
    {Metric::kUniquesTotal, "cloudflare_zone_uniques_total", Dataset::kHttp1m,
     "zone", "Unique visitor IP addresses"},
    {Metric::kRequestsContentType, "cloudflare_zone_requests_content_type",
     Dataset::kHttp1m, "zone, content_type", "Requests per content type"},
    {Metric::kBandwidthContentType, "cloudflare_zone_bandwidth_content_type",
     Dataset::kHttp1m, "zone, content_type", "Bytes per content type"},
    {Metric::kRequestsCountry, "cloudflare_zone_requests_country",
     Dataset::kHttp1m, "zone, country, region", "Requests per client country"},
    {Metric::kBandwidthCountry, "cloudflare_zone_bandwidth_country",
     Dataset::kHttp1m, "zone, country, region", "Bytes per client country"},
    {Metric::kThreatsCountry, "cloudflare_zone_threats_country",
     Dataset::kHttp1m, "zone, country, region", "Threats per client country"},
    {Metric::kRequestsStatus, "cloudflare_zone_requests_status",
     Dataset::kHttp1m, "zone, status",
     "Requests per edge HTTP status (zero-filled)"},
    {Metric::kRequestsBrowser,
     "cloudflare_zone_requests_browser_map_page_views_count", Dataset::kHttp1m,
     "zone, family", "Page views per browser family"},
    {Metric::kThreatsType, "cloudflare_zone_threats_type", Dataset::kHttp1m,
     "zone, type", "Threats per threat type"},
    {Metric::kRequestsStatusAdaptive, "cloudflare_zone_requests_status_v2",
     Dataset::kHttpAdaptive, "zone, status",
     "Requests per edge HTTP status from the adaptive dataset, every plan "
     "(zero-filled)"},
    {Metric::kDnsQueries, "cloudflare_zone_dns_queries_total", Dataset::kDns,
     "zone, response_code, query_type, ip_version",
     "DNS queries per response code, query type and IP version"},
    {Metric::kDnsStale, "cloudflare_zone_dns_stale_total", Dataset::kDns,
     "zone", "DNS queries answered with stale records"},
    {Metric::kDnsUncached, "cloudflare_zone_dns_uncached_total", Dataset::kDns,
     "zone", "DNS queries neither cached nor stale"},
}};

// Region of every ISO 3166-1 alpha-2 code, by UN geoscheme region.
struct RegionCodes {
  std::string_view region;
  std::string_view codes;  // space separated
};
constexpr std::array<RegionCodes, 6> kRegionCodes = {{
    {"Africa",
     "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN "
     "GW KE LS LR LY MG MW ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO "
     "ZA SS SD TZ TG TN UG EH ZM ZW IO TF"},
    {"Americas",
     "AI AG AR AW BS BB BZ BM BO BQ BV BR CA KY CL CO CR CU CW DM DO EC SV FK "
     "GF GL GD GP GT GY HT HN JM MQ MX MS NI PA PY PE PR BL KN LC MF PM VC SX "
     "GS SR TT TC US UY VE VG VI"},
    {"Asia",
     "AF AM AZ BH BD BT BN KH CN CY GE HK IN ID IR IQ IL JP JO KZ KW KG LA LB "
     "MO MY MV MN MM NP KP OM PK PS PH QA SA SG KR LK SY TW TJ TH TL TR TM AE "
     "UZ VN YE"},
    {"Europe",
     "AX AL AD AT BY BE BA BG HR CZ DK EE FO FI FR DE GI GR GG VA HU IS IE IM "
     "IT JE XK LV LI LT LU MT MD MC ME NL MK NO PL PT RO RU SM RS SK SI ES SJ "
     "SE CH UA GB"},
    {"Oceania",
     "AS AU CX CC CK FJ PF GU HM KI MH FM NR NC NZ NU NF MP PW PG PN WS SB TK "
     "TO TV UM VU WF"},
    {"Antarctica", "AQ"},
}};

constexpr std::string_view kUnknownRegion = "Unknown";

// Region index + 1 for every two-letter code, 0 for codes not in the table.
class RegionTable {
 public:
  RegionTable() {
    for (size_t region = 0; region < kRegionCodes.size(); ++region) {
      const std::string_view codes = kRegionCodes[region].codes;
      for (size_t at = 0; at + 1 < codes.size(); at += 3) {
        slots_[Slot(codes[at], codes[at + 1])] =
            static_cast<uint8_t>(region + 1);
      }
    }
  }

  std::string_view Lookup(std::string_view code) const {
    if (code.size() != 2 || !IsUpper(code[0]) || !IsUpper(code[1])) {
      return kUnknownRegion;
    }
    const uint8_t entry = slots_[Slot(code[0], code[1])];
    return entry == 0 ? kUnknownRegion : kRegionCodes[entry - 1].region;
  }

 private:
  static bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
  static size_t Slot(char first, char second) {
    return static_cast<size_t>(first - 'A') * 26 +
           static_cast<size_t>(second - 'A');
  }

  std::array<uint8_t, 26 * 26> slots_{};
};

}  // namespace

std::string_view DatasetName(Dataset dataset) {
  switch (dataset) {
    case Dataset::kHttp1m:
      return "httpRequests1mGroups";
    case Dataset::kHttpAdaptive:
      return "httpRequestsAdaptiveGroups";
    case Dataset::kDns:
      return "dnsAnalyticsAdaptiveGroups";
  }
  return "unknown";
}

bool DatasetAllowedOnFreePlan(Dataset dataset) {
  return dataset != Dataset::kHttp1m;
}

const std::array<MetricInfo, kMetricCount>& Metrics() { return kMetrics; }

const MetricInfo& Info(Metric metric) {
  return kMetrics[static_cast<size_t>(metric)];
}

MetricSet MetricSet::All() {
  MetricSet set;
  set.bits_.set();
  return set;
}

bool MetricSet::NeedsDataset(Dataset dataset) const {
  return std::any_of(kMetrics.begin(), kMetrics.end(),
                     [&](const MetricInfo& info) {
                       return info.dataset == dataset && Has(info.metric);
                     });
}

absl::StatusOr<MetricSet> ResolveMetricSet(
    const std::vector<std::string>& allow,
    const std::vector<std::string>& deny) {
  const auto find = [](const std::string& name) -> const MetricInfo* {
    for (const MetricInfo& info : kMetrics) {
      if (info.name == name) return &info;
    }
    return nullptr;
  };
  const auto unknown = [](const std::string& name, const char* list) {
    std::vector<std::string> known;
    for (const MetricInfo& info : kMetrics) known.emplace_back(info.name);
    return absl::InvalidArgumentError(
        absl::StrCat("unknown metric \"", name, "\" in ", list,
                     "; known metrics: ", absl::StrJoin(known, ", ")));
  };

  MetricSet set = allow.empty() ? MetricSet::All() : MetricSet();
  for (const std::string& name : allow) {
    const MetricInfo* info = find(name);
    if (info == nullptr) return unknown(name, "the allow list");
    set.Add(info->metric);
  }
  for (const std::string& name : deny) {
    const MetricInfo* info = find(name);
    if (info == nullptr) return unknown(name, "the deny list");
    set.Remove(info->metric);
  }
  if (set.empty()) {
    return absl::InvalidArgumentError(
        "no metric left to export: the deny list removes every metric of the "
        "allow list");
  }
  return set;
}

std::string_view CountryRegion(std::string_view alpha2) {
  static const RegionTable* const table = new RegionTable();
  return table->Lookup(alpha2);
}

}  // namespace converge::cloudflare

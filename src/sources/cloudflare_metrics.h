// The metrics the cloudflare source exports: which GraphQL dataset each comes
// from, its name and labels, and the allow/deny selection that decides what
// is queried at all.
//
// Names and labels follow lablabs/cloudflare-exporter (prometheus.go), so
// dashboards built for it keep working. That exporter has no per-minute
// series for httpRequestsAdaptiveGroups by edge status or for
// dnsAnalyticsAdaptiveGroups. Those take the names of the Go exporter that
// converge replaces (supabase/cloudflare-exporter, metricnames.go).
//
// Thread safety: constant tables and value types.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_METRICS_H_
#define CONVERGE_SOURCES_CLOUDFLARE_METRICS_H_

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace converge::cloudflare {

// A GraphQL dataset of a zone. Each is one query per zone chunk.
enum class Dataset : uint8_t {
  kHttp1m = 0,        // httpRequests1mGroups: not available on the Free plan
  kHttpAdaptive = 1,  // httpRequestsAdaptiveGroups: every plan
  kDns = 2,           // dnsAnalyticsAdaptiveGroups
};
inline constexpr int kDatasetCount = 3;

// The dataset's GraphQL field name, e.g. "httpRequests1mGroups".
std::string_view DatasetName(Dataset dataset);

// Whether a zone on the Free plan may query `dataset`.
bool DatasetAllowedOnFreePlan(Dataset dataset);

enum class Metric : uint8_t {
  // httpRequests1mGroups, zone totals.
  kRequestsTotal = 0,
  kRequestsCached,
  kRequestsSslEncrypted,
  kBandwidthTotal,
  kBandwidthCached,
  kBandwidthSslEncrypted,
  kPageviewsTotal,
  kThreatsTotal,
  kUniquesTotal,
  // httpRequests1mGroups, breakdowns.
  kRequestsContentType,
  kBandwidthContentType,
  kRequestsCountry,
  kBandwidthCountry,
  kThreatsCountry,
  kRequestsStatus,
  kRequestsBrowser,
  kThreatsType,
  // httpRequestsAdaptiveGroups.
  kRequestsStatusAdaptive,
  // dnsAnalyticsAdaptiveGroups.
  kDnsQueries,
  kDnsStale,
  kDnsUncached,
};
inline constexpr int kMetricCount = 21;

struct MetricInfo {
  Metric metric;
  std::string_view name;  // e.g. "cloudflare_zone_requests_total"
  Dataset dataset;
  std::string_view labels;  // for documentation, e.g. "zone, status"
  std::string_view help;    // one line, for documentation
};

// Every metric, in the order of the Metric enum.
const std::array<MetricInfo, kMetricCount>& Metrics();

const MetricInfo& Info(Metric metric);

// A selection of metrics.
class MetricSet {
 public:
  static MetricSet All();

  bool Has(Metric metric) const {
    return bits_.test(static_cast<size_t>(metric));
  }
  void Add(Metric metric) { bits_.set(static_cast<size_t>(metric)); }
  void Remove(Metric metric) { bits_.reset(static_cast<size_t>(metric)); }

  // Whether any selected metric comes from `dataset`.
  bool NeedsDataset(Dataset dataset) const;
  bool empty() const { return bits_.none(); }

 private:
  std::bitset<kMetricCount> bits_;
};

// Selects the metrics named in `allow` (every metric when empty) minus those
// in `deny`. Returns kInvalidArgument naming an unknown metric, with the list
// of known ones, or when nothing is left.
absl::StatusOr<MetricSet> ResolveMetricSet(
    const std::vector<std::string>& allow,
    const std::vector<std::string>& deny);

// The region label of a country breakdown: the UN geoscheme region (Africa,
// Americas, Asia, Europe, Oceania, Antarctica) of an ISO 3166-1 alpha-2 code,
// as lablabs/cloudflare-exporter labels it. Codes outside ISO 3166-1, such
// as Cloudflare's XX (unknown) and T1 (Tor), give "Unknown".
std::string_view CountryRegion(std::string_view alpha2);

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_METRICS_H_

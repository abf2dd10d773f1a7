#include "sources/cloudflare_query.h"

#include <cassert>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/absl_compat.h"

namespace converge::cloudflare {
namespace {

// Returns `fields` joined by spaces, or "" when none.
std::string Selection(const std::vector<std::string>& fields) {
  return absl::StrJoin(fields, " ");
}

// The selection of one httpRequests1mGroups group.
std::string Http1mSelection(const MetricSet& metrics) {
  const auto has = [&](Metric metric) { return metrics.Has(metric); };

  // Totals.
  std::vector<std::string> sum;
  const std::pair<Metric, const char*> totals[] = {
      {Metric::kRequestsTotal, "requests"},
      {Metric::kRequestsCached, "cachedRequests"},
      {Metric::kRequestsSslEncrypted, "encryptedRequests"},
      {Metric::kBandwidthTotal, "bytes"},
      {Metric::kBandwidthCached, "cachedBytes"},
      {Metric::kBandwidthSslEncrypted, "encryptedBytes"},
      {Metric::kPageviewsTotal, "pageViews"},
      {Metric::kThreatsTotal, "threats"},
  };
  for (const auto& [metric, field] : totals) {
    if (has(metric)) sum.emplace_back(field);
  }

  // Breakdowns: each map requests only the values an enabled metric reads.
  std::vector<std::string> content;
  if (has(Metric::kRequestsContentType)) content.emplace_back("requests");
  if (has(Metric::kBandwidthContentType)) content.emplace_back("bytes");
  if (!content.empty()) {
    sum.push_back(absl::StrCat("contentTypeMap { edgeResponseContentTypeName ",
                               Selection(content), " }"));
  }
  std::vector<std::string> country;
  if (has(Metric::kRequestsCountry)) country.emplace_back("requests");
  if (has(Metric::kBandwidthCountry)) country.emplace_back("bytes");
  if (has(Metric::kThreatsCountry)) country.emplace_back("threats");
  if (!country.empty()) {
    sum.push_back(absl::StrCat("countryMap { clientCountryName ",
                               Selection(country), " }"));
  }
  if (has(Metric::kRequestsStatus)) {
    sum.emplace_back("responseStatusMap { edgeResponseStatus requests }");
  }
  if (has(Metric::kRequestsBrowser)) {
    sum.emplace_back("browserMap { uaBrowserFamily pageViews }");
  }
  if (has(Metric::kThreatsType)) {
    sum.emplace_back("threatPathingMap { threatPathingName requests }");
  }

  std::string selection = "dimensions { datetime }";
  if (!sum.empty())
    absl::StrAppend(&selection, " sum { ", Selection(sum), " }");
  if (has(Metric::kUniquesTotal)) {
    absl::StrAppend(&selection, " uniq { uniques }");
  }
  return selection;
}

std::string DnsSelection(const MetricSet& metrics) {
  // Without the per-code series the groups are whole minutes, which keeps
  // the row count (and the row limit) small.
  std::string selection =
      metrics.Has(Metric::kDnsQueries)
          ? "count dimensions { datetimeMinute responseCode queryType "
            "ipVersion }"
          : "count dimensions { datetimeMinute }";
  std::vector<std::string> sum;
  if (metrics.Has(Metric::kDnsStale)) sum.emplace_back("countStale");
  if (metrics.Has(Metric::kDnsUncached)) {
    sum.emplace_back("countNotCachedAndNotStale");
  }
  if (!sum.empty())
    absl::StrAppend(&selection, " sum { ", Selection(sum), " }");
  return selection;
}

}  // namespace

std::string BuildQueryText(Dataset dataset, const MetricSet& metrics) {
  assert(metrics.NeedsDataset(dataset));

  std::string selection;
  std::string order;
  switch (dataset) {
    case Dataset::kHttp1m:
      selection = Http1mSelection(metrics);
      order = "datetime_ASC";
      break;
    case Dataset::kHttpAdaptive:
      selection = "count dimensions { datetimeMinute edgeResponseStatus }";
      order = "datetimeMinute_ASC";
      break;
    case Dataset::kDns:
      selection = DnsSelection(metrics);
      order = "datetimeMinute_ASC";
      break;
  }

  return absl::StrCat(
      "query ($zoneTags: [String!], $start: Time!, $end: Time!, $limit: "
      "Int!) { viewer { zones(filter: { zoneTag_in: $zoneTags }) { zoneTag ",
      ToAbsl(DatasetName(dataset)),
      "(limit: $limit, filter: { datetime_geq: $start, datetime_lt: $end }, "
      "orderBy: [",
      order, "]) { ", selection, " } } } }");
}

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out->append(escaped);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

std::string FormatApiTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

std::string BuildRequestBody(std::string_view query_text,
                             std::span<const std::string> zone_tags,
                             absl::Time start, absl::Time end, uint32_t limit) {
  std::string body = "{\"query\":";
  AppendJsonString(query_text, &body);
  body.append(",\"variables\":{\"zoneTags\":[");
  for (size_t i = 0; i < zone_tags.size(); ++i) {
    if (i > 0) body.push_back(',');
    AppendJsonString(zone_tags[i], &body);
  }
  body.append("],\"start\":");
  AppendJsonString(FormatApiTime(start), &body);
  body.append(",\"end\":");
  AppendJsonString(FormatApiTime(end), &body);
  absl::StrAppend(&body, ",\"limit\":", limit, "}}");
  return body;
}

}  // namespace converge::cloudflare

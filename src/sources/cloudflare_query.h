// GraphQL query building: one query per dataset for a list of zones and a
// time range. A query selects only the fields the enabled metrics need, so a
// denied metric costs no response size, and a denied dataset costs no API
// budget.
//
// Every query takes the same variables: `zoneTags` (at most 10 zone IDs),
// `start` and `end` (RFC 3339 in UTC, the range [start, end)) and `limit`
// (rows per zone).
//
// Thread safety: free functions.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_QUERY_H_
#define CONVERGE_SOURCES_CLOUDFLARE_QUERY_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "sources/cloudflare_metrics.h"

namespace converge::cloudflare {

// The query text of `dataset` for the metrics in `metrics`.
// REQUIRES: metrics.NeedsDataset(dataset).
std::string BuildQueryText(Dataset dataset, const MetricSet& metrics);

// The JSON request body {"query": ..., "variables": {...}}.
std::string BuildRequestBody(std::string_view query_text,
                             std::span<const std::string> zone_tags,
                             absl::Time start, absl::Time end, uint32_t limit);

// Appends `text` as a JSON string literal, quotes included.
void AppendJsonString(std::string_view text, std::string* out);

// Formats a time the way the API's Time scalar takes it, e.g.
// 2026-06-01T00:05:00Z.
std::string FormatApiTime(absl::Time time);

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_QUERY_H_

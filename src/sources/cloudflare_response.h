// Parsing of GraphQL Analytics responses: the `errors` array, classified by
// what the caller should do, and the rows of one dataset for every zone of
// `data.viewer.zones[]`.
//
// A response can be HTTP 200 and still carry errors: the array decides, and
// `data` is only read when it is empty or null. An error's `path` names the
// zone by its position in the query's zone list, e.g.
// ["viewer", "zones", 2, "httpRequests1mGroups"]; the position may come as a
// number or as a numeric string.
//
// Thread safety: free functions and value types.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_RESPONSE_H_
#define CONVERGE_SOURCES_CLOUDFLARE_RESPONSE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sources/cloudflare_metrics.h"

namespace converge::cloudflare {

// One minute of httpRequests1mGroups. Fields the query did not ask for stay
// zero or empty.
struct Http1mRow {
  int64_t bucket_ms = 0;  // dimensions.datetime
  uint64_t requests = 0;
  uint64_t cached_requests = 0;
  uint64_t encrypted_requests = 0;
  uint64_t bytes = 0;
  uint64_t cached_bytes = 0;
  uint64_t encrypted_bytes = 0;
  uint64_t page_views = 0;
  uint64_t threats = 0;
  uint64_t uniques = 0;  // uniq.uniques

  struct ContentType {
    std::string name;  // edgeResponseContentTypeName
    uint64_t requests = 0;
    uint64_t bytes = 0;
  };
  struct Country {
    std::string code;  // clientCountryName, an ISO 3166-1 alpha-2 code
    uint64_t requests = 0;
    uint64_t bytes = 0;
    uint64_t threats = 0;
  };
  struct Count {
    std::string key;  // status, browser family or threat path
    uint64_t value = 0;
  };
  std::vector<ContentType> content_types;  // contentTypeMap
  std::vector<Country> countries;          // countryMap
  std::vector<Count> statuses;             // responseStatusMap
  std::vector<Count> browsers;             // browserMap (page views)
  std::vector<Count> threat_paths;         // threatPathingMap
};

// One (minute, edge status) group of httpRequestsAdaptiveGroups.
struct AdaptiveRow {
  int64_t bucket_ms = 0;  // dimensions.datetimeMinute
  std::string status;     // dimensions.edgeResponseStatus
  uint64_t count = 0;
};

// One (minute, response code, query type, IP version) group of
// dnsAnalyticsAdaptiveGroups. The three dimensions are empty when the query
// grouped by minute only.
struct DnsRow {
  int64_t bucket_ms = 0;  // dimensions.datetimeMinute
  std::string response_code;
  std::string query_type;
  std::string ip_version;
  uint64_t count = 0;
  uint64_t stale = 0;     // sum.countStale
  uint64_t uncached = 0;  // sum.countNotCachedAndNotStale
};

// The rows of one zone for the queried dataset; only the vector of that
// dataset is filled.
struct ZoneRows {
  std::string zone_tag;
  std::vector<Http1mRow> http1m;
  std::vector<AdaptiveRow> adaptive;
  std::vector<DnsRow> dns;

  size_t size() const { return http1m.size() + adaptive.size() + dns.size(); }
};

struct GraphqlError {
  std::string message;
  std::string code;                  // extensions.code, often empty
  std::optional<size_t> zone_index;  // position in the query's zone list
};

struct GraphqlResponse {
  std::vector<GraphqlError> errors;
  std::vector<ZoneRows> zones;  // in response order; empty when errors
};

// Parses a response body of a query on `dataset`. Returns kInvalidArgument
// for a body that is not JSON (an HTML error page, a truncated response) or
// that breaks the response shape, quoting the offending part.
absl::StatusOr<GraphqlResponse> ParseGraphqlResponse(std::string_view body,
                                                     Dataset dataset);

// The caller's course of action for one error.
enum class ErrorKind {
  kRateLimited,  // pause every fetcher sharing the credentials
  kTooLarge,     // the query asked too much: split the time range
  kTooOld,       // the range is older than the plan keeps: no data
  kZone,         // names one zone: leave it out and query the others
  kOther,        // anything else: the whole query failed
};

ErrorKind Classify(const GraphqlError& error);

// The delay a rate-limit message requests, e.g. "rate limiter budget
// depleted, try again after 5 minutes" gives 5 minutes. Returns nullopt when
// the message names none.
std::optional<absl::Duration> DelayInMessage(std::string_view message);

// Whether `body` looks like an HTML page rather than JSON.
bool LooksLikeHtml(std::string_view body);

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_RESPONSE_H_

// Factories for the built-in sources: `replay` (recorded fetches from disk),
// `sim` (a synthetic Cloudflare-like workload) and `cloudflare` (the
// Cloudflare GraphQL Analytics API).
//
// Thread safety: the returned sources follow the Source contract.

#ifndef CONVERGE_SOURCES_H_
#define CONVERGE_SOURCES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/lanes.h"
#include "converge/source.h"

namespace converge {

// One recorded fetch: `{seq, start, end, observations: [{name, labels, value,
// bucket}]}` with RFC 3339 times carrying their own offset.
struct RecordedFetch {
  int64_t seq = 0;
  absl::Time start;
  absl::Time end;
  std::vector<Observation> observations;
};

// Parses one recorded fetch. Returns kInvalidArgument naming the field and,
// for observations, the index of the first malformed entry.
absl::StatusOr<RecordedFetch> ParseRecordedFetch(std::string_view json);

struct ReplayOptions {
  std::string dir;  // folder of *.json recorded fetches
};

// Loads every *.json file of `options.dir` and replays them in `seq` order,
// one tick per file with `now = end`, as fast as the pipeline takes them.
// Returns kNotFound for a missing folder or one without *.json files, and
// kInvalidArgument naming the file for a malformed one or a repeated `seq`.
absl::StatusOr<std::unique_ptr<Source>> MakeReplaySource(
    const ReplayOptions& options);

struct SimOptions {
  uint32_t zones = 10;             // number of simulated zones, >= 1
  uint32_t series_per_zone = 20;   // series of each zone, >= 1
  uint64_t seed = 1;               // same seed, same values
  absl::Duration duration = absl::Hours(1);  // simulated time to run, > 0
  absl::Time start;                // simulated process start (tick 0's now)
  bool realtime = false;           // pace ticks to the wall clock
  uint32_t zones_per_query = 10;   // zones one fetch covers, like Cloudflare
  LaneOptions lanes;
};

// Returns kInvalidArgument naming the field for invalid options.
absl::Status ValidateSimOptions(const SimOptions& options);

// A deterministic source that behaves like Cloudflare's per-minute analytics:
// a bucket shows about 4% of its final value after one minute, 45% after two,
// 90% after three and its final value after four, with rare later revisions.
absl::StatusOr<std::unique_ptr<Source>> MakeSimSource(
    const SimOptions& options);

// --- Cloudflare GraphQL Analytics -------------------------------------------

inline constexpr char kCloudflareGraphqlUrl[] =
    "https://api.cloudflare.com/client/v4/graphql";
inline constexpr char kCloudflareRestUrl[] =
    "https://api.cloudflare.com/client/v4";

// API credentials: an API token (sent as `Authorization: Bearer`), or the
// legacy pair of account e-mail and Global API Key (`X-Auth-Email` and
// `X-Auth-Key`). These are secrets: the source never logs them and never puts
// them into a status message, and nothing else may either.
struct CloudflareCredentials {
  std::string api_token;
  std::string email;    // legacy pair, used only when api_token is empty
  std::string api_key;  // legacy pair
};

// Reads the credentials, and the first match wins: the token in
// `token_file` (when not empty, with surrounding whitespace removed), the
// CF_API_TOKEN environment variable, then the CF_API_EMAIL and CF_API_KEY
// variables together.
// Returns kInvalidArgument when none is set or the file is empty, and
// kNotFound or kPermissionDenied naming the file (never its content) when it
// cannot be read.
absl::StatusOr<CloudflareCredentials> LoadCloudflareCredentials(
    const std::string& token_file);

struct CloudflareOptions {
  CloudflareCredentials credentials;  // required

  // Endpoints. https is required, except for 127.0.0.1, ::1 and localhost
  // (a local fake), so the token never crosses a network in clear text.
  std::string graphql_url = kCloudflareGraphqlUrl;
  std::string rest_url = kCloudflareRestUrl;  // base of GET /zones

  // Zone selection. Without `zones`, every zone the credentials can read is
  // listed through the REST API. `exclude_zones` takes IDs or names.
  std::vector<std::string> zones;  // zone IDs
  std::vector<std::string> exclude_zones;

  // Metric names (see CloudflareMetricNames()). An empty allow list allows
  // every metric; the deny list wins over it. A dataset none of whose
  // metrics is left is never queried.
  std::vector<std::string> metrics_allow;
  std::vector<std::string> metrics_deny;

  absl::Duration timeout = absl::Seconds(30);  // one HTTP request, > 0
  uint32_t zones_per_query = 10;  // 1 .. 10, the API's limit
  uint32_t row_limit = 9999;      // rows per zone per query, 1 .. 9999

  // The API's GraphQL rate limit for the user behind the credentials:
  // `query_budget` queries per 5 minutes (300 by default). The start-up
  // check and the backfill lane's pace are computed from it.
  uint32_t query_budget = 300;  // >= 1

  // Pause of every fetcher after a rate-limit response without Retry-After.
  absl::Duration rate_limit_backoff = absl::Minutes(5);  // > 0
  // How long a zone x dataset is left out after a permission or plan error
  // that names that zone.
  absl::Duration zone_error_backoff = absl::Hours(1);  // > 0

  // Share of the zones this instance owns: every zone belongs to exactly one
  // of `cluster_members` instances (rendezvous hashing of the zone ID).
  uint32_t cluster_members = 1;       // >= 1
  uint32_t cluster_member_index = 0;  // < cluster_members

  // A simulated clock for tests and demos against a fake API: tick k runs at
  // clock_start + k * poll_interval, as fast as the pipeline allows, until
  // clock_duration has passed. Without clock_start the source ticks on the
  // wall clock until it is stopped.
  std::optional<absl::Time> clock_start;
  absl::Duration clock_duration = absl::ZeroDuration();  // > 0 with start

  LaneOptions lanes;
};

// Returns OK, or kInvalidArgument naming the field, the value and the rule.
// Checks the options only; credentials are checked for presence.
absl::Status ValidateCloudflareOptions(const CloudflareOptions& options);

// Names of every metric the cloudflare source can export, in the order the
// README lists them.
std::vector<std::string> CloudflareMetricNames();

// Lists and selects the zones (blocking REST calls), checks the query budget
// (logging an error or a warning with a suggested poll interval when it
// cannot hold), and returns the source. Returns kInvalidArgument for invalid
// options, the REST error when the zones cannot be listed or a requested zone
// cannot be read, and kFailedPrecondition when no zone is left to query.
absl::StatusOr<std::unique_ptr<Source>> MakeCloudflareSource(
    const CloudflareOptions& options);

}  // namespace converge

#endif  // CONVERGE_SOURCES_H_

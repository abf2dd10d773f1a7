// The cloudflare source: per-minute zone analytics from the Cloudflare
// GraphQL Analytics API, planned in live and backfill lanes.
//
// A FetchTask's partition names one zone chunk of one dataset (at most
// `zones_per_query` zones), so the live lane costs one query per chunk and
// dataset each poll interval. A fetch:
//   1. returns kUnavailable at once while a rate-limit pause runs, so the
//      lanes retry later without spending budget;
//   2. queries the whole minutes of its range that have ended, leaving out
//      zone x dataset pairs in backoff after a permission or plan error;
//   3. follows the `errors` array whatever the HTTP status. A rate limit
//      pauses every fetcher. An error naming one zone leaves that zone out
//      and queries the others again. A response at the row limit, or one the
//      API rejects as too large, is fetched again as two halves of the time
//      range;
//   4. turns the rows into observations, zero-filling the status
//      breakdowns (see cloudflare_observations.h).
// Failures are counted by cause (cloudflare_stats()) and returned as
// kUnavailable (kPermissionDenied for rejected credentials); they are never
// observations. The gap and backfill lanes share what the query budget
// leaves after the live lane.
//
// Thread safety: NextTick(), OnTaskDone() and Stats() on the scheduler
// thread; Fetch() and cloudflare_stats() from any thread. State shared by
// fetchers (the rate-limit pause, zone backoff, known statuses, counters) is
// internally synchronised.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_SOURCE_H_
#define CONVERGE_SOURCES_CLOUDFLARE_SOURCE_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "converge/lanes.h"
#include "converge/source.h"
#include "converge/sources.h"
#include "core/log_rate_limiter.h"
#include "sources/cloudflare_budget.h"
#include "sources/cloudflare_client.h"
#include "sources/cloudflare_metrics.h"
#include "sources/cloudflare_observations.h"
#include "sources/cloudflare_response.h"
#include "sources/cloudflare_zones.h"
#include "sources/backfill_progress.h"
#include "sources/tick_pacer.h"

namespace converge::cloudflare {

// The cause of a failed query.
enum class FailureCause : uint8_t {
  kRateLimited = 0,  // HTTP 429 or a rate-limit error inside a 200
  kHttp5xx,          // a 5xx status with a body that is not HTML
  kHttp4xx,          // another non-200 status without GraphQL errors
  kTimeout,          // no response within --cf-timeout
  kConnection,       // refused, reset, name lookup failed, TLS failed
  kHtml,             // an HTML page instead of JSON (e.g. a proxy's 502)
  kMalformed,        // invalid or truncated JSON, or an unexpected shape
  kGraphql,          // errors that name no zone and are no rate limit
  kZoneDenied,       // an error naming one zone: the zone is left out
  kTruncated,        // one minute still at the row limit: dropped
  kTooOld,           // the range is older than the plan keeps: skipped
};
inline constexpr int kFailureCauseCount = 11;

std::string_view FailureCauseName(FailureCause cause);

struct CloudflareStats {
  uint64_t queries = 0;            // GraphQL requests sent
  uint64_t fetches_paused = 0;     // fetches refused during a pause
  uint64_t rate_limit_pauses = 0;  // pauses begun
  uint64_t row_limit_splits = 0;   // time ranges fetched again as halves
  uint64_t zero_filled = 0;        // observed zeros added by the zero fill
  uint64_t zones_left_out = 0;     // zone x dataset pairs put in backoff
  uint64_t free_plan_zones = 0;    // zones without httpRequests1mGroups
  std::array<uint64_t, kFailureCauseCount> failures{};
  // The same, per dataset, for what fetches sent and where they failed;
  // failures outside a fetch (the zone listing) are only in `failures`.
  std::array<uint64_t, kDatasetCount> queries_by_dataset{};
  std::array<std::array<uint64_t, kFailureCauseCount>, kDatasetCount>
      failures_by_dataset{};

  uint64_t failures_of(FailureCause cause) const {
    return failures[static_cast<size_t>(cause)];
  }
};

// One zone chunk of one dataset.
struct Partition {
  Dataset dataset = Dataset::kHttp1m;
  std::vector<ZoneInfo> zones;
};

class CloudflareSource final : public Source {
 public:
  // Lists and selects the zones, plans the partitions and checks the budget
  // (see MakeCloudflareSource). `wall_clock` times rate-limit pauses and
  // the ticks of a source without a simulated clock; tests pass a manual
  // one.
  static absl::StatusOr<std::unique_ptr<CloudflareSource>> Create(
      const CloudflareOptions& options, Clock wall_clock = absl::Now);

  // Logs the counters.
  ~CloudflareSource() override;

  std::string_view name() const override { return "cloudflare"; }
  std::optional<TickPlan> NextTick(std::stop_token stop) override;
  absl::Status Fetch(const FetchTask& task,
                     ObservationBatch* out) override;
  void OnTaskDone(const FetchTask& task, const absl::Status& status) override;
  converge::SourceStats Stats() const override;

  CloudflareStats cloudflare_stats() const;
  const std::vector<Partition>& partitions() const { return partitions_; }
  const BudgetPlan& budget() const { return budget_; }
  absl::Time start() const { return start_; }

 private:
  // Rows per zone ID, merged over the queries of one fetch.
  using RowsByZone = std::map<std::string, ZoneRows>;

  CloudflareSource(const CloudflareOptions& options, Clock wall_clock,
                   MetricSet metrics, std::shared_ptr<CloudflareClient> client,
                   std::vector<Partition> partitions, absl::Time start);

  // Queries `zones` x `dataset` over [start, end) and merges the rows into
  // `rows`, splitting the range and leaving out zones as the responses
  // require. `now` is the task's time, for zone backoff.
  absl::Status QueryRange(Dataset dataset, std::vector<const ZoneInfo*> zones,
                          absl::Time start, absl::Time end, absl::Time now,
                          RowsByZone* rows);

  // Handles the GraphQL errors of a response to QueryRange's query.
  absl::Status HandleErrors(Dataset dataset,
                            const std::vector<const ZoneInfo*>& zones,
                            const std::vector<GraphqlError>& errors,
                            absl::Time start, absl::Time end, absl::Time now,
                            RowsByZone* rows);

  // Fetches [start, end) again as two halves of whole minutes.
  absl::Status Split(Dataset dataset, const std::vector<const ZoneInfo*>& zones,
                     absl::Time start, absl::Time end, absl::Time now,
                     RowsByZone* rows);

  // Logs (rate-limited) that `zone`, or every zone when null, has no data
  // of `dataset` as old as `start`.
  void LogTooOld(Dataset dataset, const ZoneInfo* zone, absl::Time start,
                 const std::string& message);

  // Starts or extends the shared pause and logs once per pause.
  void PauseEveryFetcher(absl::Duration delay, std::string_view reason);

  absl::Status Fail(FailureCause cause, absl::Status status);
  void Count(FailureCause cause);

  void LogStats() const;

  // Constant after construction; read by every fetcher.
  const CloudflareOptions options_;
  const Clock wall_clock_;
  const MetricSet metrics_;
  const std::shared_ptr<CloudflareClient> client_;
  const std::vector<Partition> partitions_;
  const absl::Time start_;  // tick 0's now
  std::array<std::string, kDatasetCount> query_text_;
  BudgetPlan budget_;

  // Shared by fetchers; each synchronises itself.
  RateLimitGate gate_;
  ZoneBackoff zone_backoff_;
  KnownStatuses known_statuses_;
  LogRateLimiter truncation_log_{5, absl::Minutes(1)};
  LogRateLimiter too_old_log_{5, absl::Minutes(1)};
  std::atomic<uint64_t> queries_{0};
  std::atomic<uint64_t> fetches_paused_{0};
  std::atomic<uint64_t> row_limit_splits_{0};
  std::atomic<uint64_t> zero_filled_{0};
  std::atomic<uint64_t> zones_left_out_{0};
  std::array<std::atomic<uint64_t>, kFailureCauseCount> failures_{};
  std::array<std::atomic<uint64_t>, kDatasetCount> queries_by_dataset_{};
  std::array<std::array<std::atomic<uint64_t>, kFailureCauseCount>,
             kDatasetCount>
      failures_by_dataset_{};
  uint64_t free_plan_zones_ = 0;  // set during Create()

  // Scheduler thread only.
  LanePlanner planner_;
  BackfillAllowance backfill_allowance_;
  uint64_t next_tick_ = 0;
  TickPacer pacer_;  // used only without a simulated clock
  BackfillProgress backfill_progress_{"cloudflare"};
  std::chrono::steady_clock::time_point last_stats_log_ =
      std::chrono::steady_clock::now();
};

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_SOURCE_H_

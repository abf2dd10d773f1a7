// API budget state of the cloudflare source:
//   * RateLimitGate: the pause every fetcher observes after a rate-limit
//     response, because the limit belongs to the credentials, not to a query;
//   * ZoneBackoff: zone x dataset pairs left out after a permission or plan
//     error that named the zone;
//   * PlanBudget / BackfillAllowance: how many queries a configuration needs
//     per poll interval against the API's "about 300 queries per 5 minutes
//     per user", and how the gap and backfill lanes are paced inside what
//     is left.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_BUDGET_H_
#define CONVERGE_SOURCES_CLOUDFLARE_BUDGET_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "sources/cloudflare_metrics.h"

namespace converge::cloudflare {

// A clock that returns the current time; absl::Now in production, a manual
// clock in tests.
using Clock = std::function<absl::Time()>;

// The pause shared by every fetcher that uses the same credentials.
//
// Thread safety: every method may be called from any thread. The end of the
// pause is guarded by a mutex. A pause ends only by time passing, so
// WaitUntilOpen() waits with a deadline and reads the end again after each
// wake-up. Only stop requests notify the waiters.
class RateLimitGate {
 public:
  explicit RateLimitGate(Clock clock) : clock_(std::move(clock)) {}

  // Time left until the pause ends; zero when not paused.
  absl::Duration Remaining() const;

  // Pauses until now + `delay`, or keeps a pause that already ends later.
  // Returns true when no pause was running, so the caller logs one warning
  // per pause rather than one per fetch.
  bool Pause(absl::Duration delay);

  // Blocks until the pause ends or `stop` is requested. Returns false when
  // stopped. Used by a simulated clock, whose time must not run on while
  // the API refuses queries. Polls Remaining() at least every
  // `max_wait` of wall time, so a test clock moved by hand is noticed.
  bool WaitUntilOpen(std::stop_token stop,
                     absl::Duration max_wait = absl::Milliseconds(100));

  uint64_t pauses() const;

 private:
  const Clock clock_;

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;  // only stop requests notify it
  absl::Time paused_until_ = absl::InfinitePast();  // guarded by mutex_
  uint64_t pauses_ = 0;                             // guarded by mutex_
};

// Zone x dataset pairs left out until a time of the source's clock.
//
// Thread safety: every method may be called from any thread.
class ZoneBackoff {
 public:
  // Whether `zone_id` x `dataset` is left out at `now`.
  bool Blocked(const std::string& zone_id, Dataset dataset,
               absl::Time now) const;

  // Leaves the pair out until `until`. Returns true when it was not left out
  // at `now` already, so the caller logs once per pair.
  bool Block(const std::string& zone_id, Dataset dataset, absl::Time now,
             absl::Time until);

 private:
  static std::string Key(const std::string& zone_id, Dataset dataset);

  mutable std::mutex mutex_;
  absl::flat_hash_map<std::string, absl::Time> until_;  // guarded by mutex_
};

// The GraphQL API's budget: `queries` per `window` for one user.
inline constexpr absl::Duration kBudgetWindow = absl::Minutes(5);

struct BudgetPlan {
  enum class Verdict {
    kFits,            // live and backfill fit
    kBackfillSlowed,  // live fits; backfill runs below its configured pace
    kLiveOverBudget,  // the live lane alone needs more than the budget
  };
  Verdict verdict = Verdict::kFits;
  uint32_t live_per_tick = 0;            // one query per zone chunk x dataset
  int backfill_per_tick = 0;             // configured calls per tick
  double budget_per_tick = 0;            // budget / window * poll interval
  double backfill_allowed_per_tick = 0;  // what the backfill lane may use
  double needed_per_window = 0;  // live + configured backfill, per window
  absl::Duration suggested_poll_interval;  // for the live lane to fit

  // One line with the numbers, for the start-up log.
  std::string Describe(absl::Duration poll_interval, uint32_t budget) const;
};

// Plans `live_per_tick` queries each `poll_interval` plus at most
// `backfill_per_tick` backfill calls against `budget` queries per
// kBudgetWindow. Row-limit splits and re-queries after zone errors cost
// extra queries that cannot be known in advance.
BudgetPlan PlanBudget(uint32_t live_per_tick, int backfill_per_tick,
                      absl::Duration poll_interval, uint32_t budget);

// Paces the backfill lane: every tick earns `allowed_per_tick` calls (a
// fraction means one call every few ticks), capped at `max_per_tick`, and
// each call planned spends one.
//
// Thread safety: not thread-safe; owned by the scheduler thread.
class BackfillAllowance {
 public:
  BackfillAllowance(double allowed_per_tick, int max_per_tick)
      : allowed_per_tick_(allowed_per_tick), max_per_tick_(max_per_tick) {}

  // Adds one tick's allowance and returns how many calls this tick may plan.
  int StartTick();
  // Records that `calls` were planned.
  void Spend(int calls);

 private:
  const double allowed_per_tick_;
  const int max_per_tick_;
  double balance_ = 0;
};

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_BUDGET_H_

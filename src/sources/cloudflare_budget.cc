#include "sources/cloudflare_budget.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace converge::cloudflare {

// --- RateLimitGate ----------------------------------------------------------

absl::Duration RateLimitGate::Remaining() const {
  const absl::Time now = clock_();
  std::lock_guard<std::mutex> lock(mutex_);
  return std::max(absl::ZeroDuration(), paused_until_ - now);
}

bool RateLimitGate::Pause(absl::Duration delay) {
  const absl::Time now = clock_();
  std::lock_guard<std::mutex> lock(mutex_);
  const bool was_open = paused_until_ <= now;
  paused_until_ = std::max(paused_until_, now + delay);
  if (was_open) ++pauses_;
  return was_open;
}

bool RateLimitGate::WaitUntilOpen(std::stop_token stop,
                                  absl::Duration max_wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop.stop_requested()) {
    const absl::Duration left = paused_until_ - clock_();
    if (left <= absl::ZeroDuration()) return true;
    const absl::Duration wait = std::min(left, max_wait);
    wake_.wait_for(lock, stop, absl::ToChronoNanoseconds(wait),
                   [] { return false; });
  }
  return false;
}

uint64_t RateLimitGate::pauses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pauses_;
}

// --- ZoneBackoff ------------------------------------------------------------

std::string ZoneBackoff::Key(const std::string& zone_id, Dataset dataset) {
  return absl::StrCat(zone_id, "/", static_cast<int>(dataset));
}

bool ZoneBackoff::Blocked(const std::string& zone_id, Dataset dataset,
                          absl::Time now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = until_.find(Key(zone_id, dataset));
  return it != until_.end() && now < it->second;
}

bool ZoneBackoff::Block(const std::string& zone_id, Dataset dataset,
                        absl::Time now, absl::Time until) {
  std::lock_guard<std::mutex> lock(mutex_);
  absl::Time& end = until_[Key(zone_id, dataset)];
  const bool was_open = end <= now;
  end = std::max(end, until);
  return was_open;
}

// --- Budget -----------------------------------------------------------------

BudgetPlan PlanBudget(uint32_t live_per_tick, int backfill_per_tick,
                      absl::Duration poll_interval, uint32_t budget) {
  BudgetPlan plan;
  plan.live_per_tick = live_per_tick;
  plan.backfill_per_tick = backfill_per_tick;

  const double ticks_per_window = kBudgetWindow / poll_interval;
  plan.budget_per_tick = static_cast<double>(budget) / ticks_per_window;
  plan.needed_per_window =
      (static_cast<double>(live_per_tick) + backfill_per_tick) *
      ticks_per_window;

  // The poll interval at which the live lane uses the whole budget, rounded
  // up to a whole second.
  const double seconds = std::ceil(static_cast<double>(live_per_tick) *
                                   absl::ToDoubleSeconds(kBudgetWindow) /
                                   static_cast<double>(budget));
  plan.suggested_poll_interval = absl::Seconds(std::max(1.0, seconds));

  const double left = plan.budget_per_tick - live_per_tick;
  if (left < 0) {
    plan.verdict = BudgetPlan::Verdict::kLiveOverBudget;
    plan.backfill_allowed_per_tick = 0;
  } else if (left < backfill_per_tick) {
    plan.verdict = BudgetPlan::Verdict::kBackfillSlowed;
    plan.backfill_allowed_per_tick = left;
  } else {
    plan.verdict = BudgetPlan::Verdict::kFits;
    plan.backfill_allowed_per_tick = backfill_per_tick;
  }
  return plan;
}

std::string BudgetPlan::Describe(absl::Duration poll_interval,
                                 uint32_t budget) const {
  const double ticks_per_window = kBudgetWindow / poll_interval;
  return absl::StrFormat(
      "live lane %u queries per poll interval of %s (%.0f per 5m), backfill "
      "up to %d calls per poll interval (%.0f per 5m), %.0f per 5m in all; "
      "budget %u queries per 5m (%.1f per poll interval); backfill may use "
      "%.2f queries per poll interval",
      live_per_tick, absl::FormatDuration(poll_interval),
      live_per_tick * ticks_per_window, backfill_per_tick,
      backfill_per_tick * ticks_per_window, needed_per_window, budget,
      budget_per_tick, backfill_allowed_per_tick);
}

int BackfillAllowance::StartTick() {
  // The balance never exceeds one tick's cap, so a long quiet spell does not
  // turn into a burst.
  const double cap = std::max(1, max_per_tick_);
  balance_ = std::min(balance_ + allowed_per_tick_, cap);
  // A small epsilon absorbs the rounding of fractions that add up to 1.
  const int calls = static_cast<int>(std::floor(balance_ + 1e-9));
  return std::clamp(calls, 0, max_per_tick_);
}

void BackfillAllowance::Spend(int calls) { balance_ -= calls; }

}  // namespace converge::cloudflare

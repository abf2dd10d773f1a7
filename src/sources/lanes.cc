#include "converge/lanes.h"

#include <algorithm>
#include <cassert>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace converge {
namespace {

absl::Status InvalidField(absl::string_view field, absl::Duration value,
                          absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid lane options: ", field, " must be ", rule, ", got ",
      absl::FormatDuration(value)));
}

// Checks one duration field: finite, and > 0 (or >= 0 when `zero_ok`).
absl::Status CheckDuration(absl::string_view field, absl::Duration value,
                           bool zero_ok) {
  if (value == absl::InfiniteDuration() || value == -absl::InfiniteDuration()) {
    return InvalidField(field, value, "finite");
  }
  if (zero_ok && value < absl::ZeroDuration()) {
    return InvalidField(field, value, ">= 0");
  }
  if (!zero_ok && value <= absl::ZeroDuration()) {
    return InvalidField(field, value, "> 0");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateLaneOptions(const LaneOptions& options) {
  // Each field on its own.
  for (const auto& [field, value, zero_ok] :
       {std::tuple<absl::string_view, absl::Duration, bool>{
            "poll_interval", options.poll_interval, false},
        {"lookback", options.lookback, false},
        {"max_backfill", options.max_backfill, true},
        {"backfill_chunk", options.backfill_chunk, false}}) {
    absl::Status status = CheckDuration(field, value, zero_ok);
    if (!status.ok()) return status;
  }
  if (options.backfill_calls_per_tick < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid lane options: backfill_calls_per_tick must be >= 0, got ",
        options.backfill_calls_per_tick));
  }

  // Fields against each other.
  if (options.poll_interval > options.lookback) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid lane options: poll_interval (",
        absl::FormatDuration(options.poll_interval),
        ") must be <= lookback (", absl::FormatDuration(options.lookback),
        "), or the live lane skips the buckets between two ticks"));
  }
  // A partial chunk counts as one. The quotient saturates, so compare before
  // adding it.
  absl::Duration rest;
  const int64_t whole_chunks =
      absl::IDivDuration(options.max_backfill, options.backfill_chunk, &rest);
  if (whole_chunks > kMaxBackfillChunks ||
      (whole_chunks == kMaxBackfillChunks && rest > absl::ZeroDuration())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid lane options: max_backfill / backfill_chunk must be <= ",
        kMaxBackfillChunks, " chunks, got ",
        absl::FormatDuration(options.max_backfill), " / ",
        absl::FormatDuration(options.backfill_chunk),
        ". Use a larger backfill_chunk or a smaller max_backfill"));
  }
  return absl::OkStatus();
}

LanePlanner::LanePlanner(const LaneOptions& options, absl::Time start,
                         uint32_t partitions)
    : options_(options), start_(start), partitions_(partitions) {
  assert(ValidateLaneOptions(options).ok());
  assert(partitions >= 1);

  // The live lane's first tick covers [start - lookback, start), so the
  // backfill ends where it begins. A max_backfill no longer than lookback
  // leaves nothing to backfill.
  backfill_begin_ = start - options.max_backfill;
  backfill_end_ = start - options.lookback;
  if (backfill_begin_ < backfill_end_) {
    absl::Duration rest;
    const int64_t whole = absl::IDivDuration(
        backfill_end_ - backfill_begin_, options.backfill_chunk, &rest);
    chunks_total_ = static_cast<uint64_t>(whole) +
                    (rest > absl::ZeroDuration() ? 1 : 0);
  }
  covered_until_.assign(partitions, backfill_end_);
}

void LanePlanner::PlanGaps(absl::Time live_start) {
  for (uint32_t partition = 0; partition < partitions_; ++partition) {
    absl::Time& covered = covered_until_[partition];
    if (covered >= live_start) continue;
    gap_scheduled_ += live_start - covered;

    // Extend the partition's newest pending call if it ends where this gap
    // begins, so a long outage adds a few chunk-sized calls rather than one
    // call per tick.
    absl::Time begin = covered;
    for (auto it = gaps_.rbegin(); it != gaps_.rend(); ++it) {
      if (it->partition != partition) continue;
      if (it->range.end == begin) {
        it->range.end =
            std::min(live_start, it->range.start + options_.backfill_chunk);
        begin = it->range.end;
      }
      break;
    }
    while (begin < live_start) {
      const absl::Time end = std::min(live_start, begin + options_.backfill_chunk);
      gaps_.push_back(GapCall{partition, {begin, end}});
      begin = end;
    }
    covered = live_start;
  }
}

TimeRange LanePlanner::ChunkRange(uint64_t chunk) const {
  const absl::Time begin =
      backfill_begin_ + options_.backfill_chunk * static_cast<int64_t>(chunk);
  return {begin, std::min(begin + options_.backfill_chunk, backfill_end_)};
}

uint64_t LanePlanner::CallId(const BackfillCall& call) const {
  return call.chunk * partitions_ + call.partition;
}

TickPlan LanePlanner::Plan(uint64_t tick, absl::Time now) {
  TickPlan plan;
  plan.tick = tick;
  plan.now = now;

  // Live lane: every partition, every tick, never capped.
  const TimeRange live{now - options_.lookback, now};
  for (uint32_t partition = 0; partition < partitions_; ++partition) {
    FetchTask task;
    task.lane = Lane::kLive;
    task.range = live;
    task.partition = partition;
    plan.tasks.push_back(task);
  }

  // Gap lane, then backfill lane: the oldest pending calls, within the
  // per-tick budget they share.
  PlanGaps(live.start);
  int planned_calls = 0;
  while (planned_calls < options_.backfill_calls_per_tick && !gaps_.empty()) {
    ++planned_calls;
    const GapCall gap = gaps_.front();
    gaps_.pop_front();
    gaps_in_flight_.push_back(gap);
    FetchTask task;
    task.lane = Lane::kGap;
    task.range = gap.range;
    task.partition = gap.partition;
    plan.tasks.push_back(task);
  }
  BackfillCall call;
  while (planned_calls < options_.backfill_calls_per_tick &&
         TakeNextCall(&call)) {
    ++planned_calls;
    in_flight_.insert(CallId(call));
    FetchTask task;
    task.lane = Lane::kBackfill;
    task.range = ChunkRange(call.chunk);
    task.partition = call.partition;
    plan.tasks.push_back(task);
  }

  for (size_t i = 0; i < plan.tasks.size(); ++i) {
    plan.tasks[i].tick = tick;
    plan.tasks[i].index = static_cast<uint32_t>(i);
    plan.tasks[i].now = now;
  }
  return plan;
}

bool LanePlanner::TakeNextCall(BackfillCall* call) {
  if (!retries_.empty()) {
    *call = retries_.front();
    retries_.pop_front();
    return true;
  }
  if (next_call_ >= chunks_total_ * partitions_) return false;

  call->chunk = next_call_ / partitions_;
  call->partition = static_cast<uint32_t>(next_call_ % partitions_);
  ++next_call_;
  // Calls come out chunk-major, so partition 0 opens the chunk's count.
  if (call->partition == 0) remaining_[call->chunk] = partitions_;
  return true;
}

void LanePlanner::Requeue(const BackfillCall& call) {
  const auto older = [this](const BackfillCall& a, const BackfillCall& b) {
    return CallId(a) < CallId(b);
  };
  retries_.insert(
      std::upper_bound(retries_.begin(), retries_.end(), call, older), call);
}

void LanePlanner::OnTaskDone(const FetchTask& task, bool ok) {
  // A successful live fetch covers the partition up to its end.
  if (task.lane == Lane::kLive) {
    if (ok && task.partition < partitions_) {
      covered_until_[task.partition] =
          std::max(covered_until_[task.partition], task.range.end);
    }
    return;
  }

  // A failed gap call goes back to the front of the gap lane.
  if (task.lane == Lane::kGap) {
    auto it = std::find_if(
        gaps_in_flight_.begin(), gaps_in_flight_.end(), [&](const GapCall& gap) {
          return gap.partition == task.partition &&
                 gap.range.start == task.range.start &&
                 gap.range.end == task.range.end;
        });
    if (it == gaps_in_flight_.end()) return;
    if (!ok) {
      // Keep the pending gap calls oldest first.
      const GapCall failed = *it;
      gaps_.insert(std::upper_bound(gaps_.begin(), gaps_.end(), failed,
                                    [](const GapCall& a, const GapCall& b) {
                                      return a.range.start < b.range.start;
                                    }),
                   failed);
    }
    gaps_in_flight_.erase(it);
    return;
  }

  if (task.lane != Lane::kBackfill || task.range.start < backfill_begin_) {
    return;
  }

  // Recover the call from the task. A report for a call that is not in
  // flight (a duplicate, or another planner's task) changes nothing.
  BackfillCall call;
  call.chunk = static_cast<uint64_t>((task.range.start - backfill_begin_) /
                                     options_.backfill_chunk);
  call.partition = task.partition;
  if (call.partition >= partitions_ || in_flight_.erase(CallId(call)) == 0) {
    return;
  }

  if (!ok) {
    Requeue(call);
    return;
  }
  auto it = remaining_.find(call.chunk);
  assert(it != remaining_.end());
  if (--it->second == 0) {
    remaining_.erase(it);
    ++chunks_done_;
  }
}

}  // namespace converge

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "converge/pipeline.h"

namespace converge {
namespace {

constexpr int kMaxThreads = 256;

absl::Status CheckRange(const char* field, int64_t value, int64_t min,
                        int64_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be between ", min, " and ", max, ", got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckPositive(const char* field, absl::Duration value) {
  if (value <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be > 0, got ", absl::FormatDuration(value)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePipelineOptions(const PipelineOptions& options) {
  const absl::Status checks[] = {
      ValidateEngineOptions(options.engine),
      CheckRange("shards", options.shards, 1, kMaxThreads),
      CheckRange("fetchers", options.fetchers, 1, kMaxThreads),
      CheckRange("shard_queue_capacity",
                 static_cast<int64_t>(options.shard_queue_capacity), 1,
                 int64_t{1} << 32),
      CheckRange("sink_queue_capacity",
                 static_cast<int64_t>(options.sink_queue_capacity), 1,
                 int64_t{1} << 32),
      CheckRange("batch_max_samples",
                 static_cast<int64_t>(options.batch_max_samples), 1,
                 int64_t{1} << 24),
      CheckRange("batch_max_bytes",
                 static_cast<int64_t>(options.batch_max_bytes), 1,
                 int64_t{1} << 32),
      CheckPositive("flush_interval", options.flush_interval),
      CheckPositive("retry_min", options.retry_min),
      CheckPositive("retry_max", options.retry_max),
      CheckPositive("shutdown_timeout", options.shutdown_timeout),
  };
  for (const absl::Status& status : checks) {
    if (!status.ok()) return status;
  }
  if (options.retry_max < options.retry_min) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retry_max must be >= retry_min, got retry_max=",
        absl::FormatDuration(options.retry_max),
        " retry_min=", absl::FormatDuration(options.retry_min)));
  }
  return absl::OkStatus();
}

std::string PipelineSummary::ToLine() const {
  const double seconds = absl::ToDoubleSeconds(wall_time);
  const double rate =
      seconds > 0 ? static_cast<double>(engine.observations) / seconds : 0.0;
  std::string rejected_by_status;
  for (const auto& [http_status, count] : rejected_by_http_status) {
    absl::StrAppend(&rejected_by_status, rejected_by_status.empty() ? "" : ",",
                    http_status == 0 ? "other" : absl::StrCat(http_status), ":",
                    count);
  }
  return absl::StrFormat(
      "converge summary: observations=%d samples=%d (stable=%d forced=%d "
      "flushed=%d) late_dropped=%d delivered=%d rejected=%d "
      "rejected_by_status={%s} undelivered=%d superseded=%d pushes=%d "
      "retries=%d retry_wait=%.1fs fetches_ok=%d fetches_failed=%d ticks=%d "
      "backfill_chunks=%d/%d gap_minutes=%.1f wall=%.3fs rate=%.0f obs/s",
      engine.observations, engine.samples_total(), engine.samples_stable,
      engine.samples_forced, engine.samples_flushed, engine.late_dropped,
      samples_delivered, samples_rejected, rejected_by_status,
      samples_undelivered, samples_superseded, pushes, push_retries,
      absl::ToDoubleSeconds(retry_wait), fetches_ok, fetches_failed, ticks,
      source.backfill_chunks_done, source.backfill_chunks_total,
      absl::ToDoubleMinutes(source.gap_scheduled), seconds, rate);
}

}  // namespace converge

#include "pipeline/sink_worker.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/random/random.h"
#include "core/log_rate_limiter.h"

namespace converge {
namespace {

// Sample with an empty series: the wake-up that Finish() enqueues. Every
// real sample has a non-empty series (SeriesKey::Make rejects empty names).
bool IsWakeup(const Sample& sample) { return sample.series.encoded().empty(); }

// Estimated remote write bytes of one sample before compression: the label
// strings plus framing, value and timestamp.
size_t EstimatedBytes(const Sample& sample) {
  return sample.series.encoded().size() + 32;
}

}  // namespace

SinkWorker::SinkWorker(const SinkWorkerOptions& options, Sink* sink,
                       size_t queue_capacity)
    : options_(options), sink_(sink), queue_(queue_capacity) {}

void SinkWorker::Finish(uint64_t total) {
  expected_total_.store(total, std::memory_order_release);
  BoundedQueue<Sample>::ProducerToken token = queue_.MakeProducerToken();
  queue_.Push(token, Sample());
}

void SinkWorker::SetDeadline(absl::Time deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    deadline_ = std::min(deadline_, deadline);
  }
  deadline_changed_.notify_all();
}

bool SinkWorker::DeadlinePassed() {
  std::lock_guard<std::mutex> lock(mutex_);
  return absl::Now() >= deadline_;
}

void SinkWorker::Run() {
  BoundedQueue<Sample>::ConsumerToken consumer = queue_.MakeConsumerToken();
  std::vector<Sample> incoming(options_.batch_max_samples);
  std::vector<Sample> batch;
  batch.reserve(options_.batch_max_samples);
  size_t batch_bytes = 0;
  absl::Time batch_opened;
  bool finish_seen = false;
  uint64_t received = 0;

  while (true) {
    // Wait for samples, but never past the open batch's flush time.
    absl::Duration wait = options_.flush_interval;
    if (!batch.empty()) {
      wait = std::max(absl::ZeroDuration(),
                      batch_opened + options_.flush_interval - absl::Now());
    }
    const size_t room = options_.batch_max_samples - batch.size();
    const size_t count = queue_.PopBulkFor(
        consumer, incoming.data(), room, absl::ToInt64Microseconds(wait));

    for (size_t i = 0; i < count; ++i) {
      if (IsWakeup(incoming[i])) {
        finish_seen = true;
        continue;
      }
      if (batch.empty()) batch_opened = absl::Now();
      batch_bytes += EstimatedBytes(incoming[i]);
      batch.push_back(std::move(incoming[i]));
      ++received;
    }

    // Close the batch on count, bytes or age.
    const bool full = batch.size() >= options_.batch_max_samples ||
                      batch_bytes >= options_.batch_max_bytes;
    const bool due = !batch.empty() &&
                     absl::Now() >= batch_opened + options_.flush_interval;
    const bool last =
        finish_seen &&
        received == expected_total_.load(std::memory_order_acquire);
    if (full || due || (last && !batch.empty())) {
      Deliver(batch);
      batch_bytes = 0;
    }
    if (last) break;
  }
}

void SinkWorker::Deliver(std::vector<Sample>& batch) {
  static LogRateLimiter retry_log(5, absl::Minutes(1));
  ++counters_.batches;

  for (int attempt = 0;; ++attempt) {
    if (DeadlinePassed()) {
      counters_.undelivered += batch.size();
      spdlog::warn(
          "sink {}: shutdown deadline passed, {} samples of this batch are "
          "undelivered",
          sink_->name(), batch.size());
      break;
    }

    const absl::Status status = sink_->Push(batch);
    if (status.ok()) {
      counters_.delivered += batch.size();
      break;
    }

    if (status.code() != absl::StatusCode::kUnavailable) {
      counters_.rejected += batch.size();
      spdlog::error("sink {}: batch of {} samples rejected, not retried: {}",
                    sink_->name(), batch.size(), status.ToString());
      break;
    }

    ++counters_.retries;
    const absl::Duration delay = RetryDelay(attempt, status);
    uint64_t suppressed = 0;
    if (retry_log.Allow(&suppressed)) {
      spdlog::warn(
          "sink {}: push of {} samples failed, retry {} in {}: {} "
          "({} similar lines suppressed)",
          sink_->name(), batch.size(), attempt + 1,
          absl::FormatDuration(delay), status.ToString(), suppressed);
    }
    WaitBeforeRetry(delay);
  }
  batch.clear();
}

absl::Duration SinkWorker::RetryDelay(int attempt, const absl::Status& status) {
  if (std::optional<absl::Duration> retry_after = RetryAfter(status)) {
    return *retry_after;
  }

  // Exponential backoff, capped, with "equal jitter": half the delay is
  // fixed and half random, so retries of many exporters spread out.
  absl::Duration delay = options_.retry_min;
  for (int i = 0; i < attempt && delay < options_.retry_max; ++i) delay *= 2;
  delay = std::min(delay, options_.retry_max);
  thread_local absl::BitGen random;
  return delay / 2 + absl::Uniform(random, 0.0, 1.0) * (delay / 2);
}

void SinkWorker::WaitBeforeRetry(absl::Duration delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  const absl::Time wake = std::min(absl::Now() + delay, deadline_);
  const absl::Time deadline_at_start = deadline_;
  // Wake early when a (new) deadline arrives, so shutdown is not held up by
  // a long backoff.
  deadline_changed_.wait_until(
      lock, absl::ToChronoTime(wake),
      [&] { return deadline_ != deadline_at_start || absl::Now() >= wake; });
}

}  // namespace converge

#include "pipeline/sink_worker.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "core/absl_compat.h"
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

// Receivers' messages can be long (a whole HTML page); logs keep the start.
constexpr size_t kMaxLoggedMessage = 512;

std::string Truncated(std::string_view message) {
  if (message.size() <= kMaxLoggedMessage) return std::string(message);
  return std::string(message.substr(0, kMaxLoggedMessage)) + " ... (truncated)";
}

// A 4xx means the receiver refused some content of the batch, so smaller
// parts can still get through, except for the statuses about the request as
// a whole (credentials, address, method, rate), which every part would get.
bool IsSplittable(const absl::Status& status) {
  const std::optional<int> http_status = HttpStatusOf(status);
  if (!http_status.has_value() || *http_status < 400 || *http_status >= 500) {
    return false;
  }
  switch (*http_status) {
    case 401:  // unauthorized
    case 403:  // forbidden
    case 404:  // not found
    case 405:  // method not allowed
    case 407:  // proxy authentication required
    case 429:  // too many requests, retried rather than rejected
      return false;
    default:
      return true;
  }
}

}  // namespace

class SinkWorker::OpenBatch {
 public:
  OpenBatch(size_t max_samples, bool coalesce)
      : max_samples_(max_samples), coalesce_(coalesce) {
    // Reserved once so that the index's pointers into `samples_` stay valid.
    samples_.reserve(max_samples);
  }

  // Adds `sample`. Returns true when it replaced a waiting sample of the same
  // series and timestamp instead.
  bool Add(Sample sample) {
    if (coalesce_) {
      auto it = index_.find(Key{&sample.series, sample.timestamp_ms});
      if (it != index_.end()) {
        Sample& waiting = samples_[it->second];
        waiting.value = sample.value;
        waiting.cause = sample.cause;
        return true;
      }
    }

    bytes_ += EstimatedBytes(sample);
    samples_.push_back(std::move(sample));
    if (coalesce_) {
      const Sample& stored = samples_.back();
      index_.emplace(Key{&stored.series, stored.timestamp_ms},
                     samples_.size() - 1);
    }
    return false;
  }

  bool empty() const { return samples_.empty(); }
  size_t size() const { return samples_.size(); }
  size_t room() const { return max_samples_ - samples_.size(); }
  size_t bytes() const { return bytes_; }
  std::vector<Sample>& samples() { return samples_; }

  void Clear() {
    index_.clear();
    samples_.clear();
    bytes_ = 0;
  }

 private:
  struct Key {
    const SeriesKey* series;
    int64_t timestamp_ms;
  };
  struct KeyHash {
    size_t operator()(const Key& key) const {
      return key.series->hash() ^
             (static_cast<uint64_t>(key.timestamp_ms) * 0x9E3779B97F4A7C15ULL);
    }
  };
  struct KeyEq {
    bool operator()(const Key& a, const Key& b) const {
      return a.timestamp_ms == b.timestamp_ms && *a.series == *b.series;
    }
  };

  const size_t max_samples_;
  const bool coalesce_;
  std::vector<Sample> samples_;
  absl::flat_hash_map<Key, size_t, KeyHash, KeyEq> index_;
  size_t bytes_ = 0;
};

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
  OpenBatch batch(options_.batch_max_samples, options_.coalesce_corrections);
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
    const size_t count = queue_.PopBulkFor(consumer, incoming.data(),
                                           batch.room(),
                                           absl::ToInt64Microseconds(wait));

    for (size_t i = 0; i < count; ++i) {
      if (IsWakeup(incoming[i])) {
        finish_seen = true;
        continue;
      }
      ++received;
      if (batch.empty()) batch_opened = absl::Now();
      if (batch.Add(std::move(incoming[i]))) ++counters_.superseded;
    }

    // Close the batch on count, bytes or age.
    const bool full = batch.room() == 0 ||
                      batch.bytes() >= options_.batch_max_bytes;
    const bool due = !batch.empty() &&
                     absl::Now() >= batch_opened + options_.flush_interval;
    const bool last =
        finish_seen &&
        received == expected_total_.load(std::memory_order_acquire);
    if (full || due || (last && !batch.empty())) {
      Deliver(batch.samples());
      batch.Clear();
      Publish(received);
    }
    if (last) break;
  }
  Publish(received);
}

void SinkWorker::Publish(uint64_t received) {
  std::lock_guard<std::mutex> lock(published_mutex_);
  published_.received = received;
  published_.delivered = counters_.delivered;
  published_.rejected = counters_.rejected;
  published_.undelivered = counters_.undelivered;
  published_.superseded = counters_.superseded;
  published_.pushes = counters_.pushes;
  published_.retries = counters_.retries;
  published_.batches = batches_;
  published_.retry_wait = counters_.retry_wait;
  published_.rejected_by_http_status = counters_.rejected_by_http_status;
}

SinkSnapshot SinkWorker::Snapshot() const {
  SinkSnapshot snapshot;
  {
    std::lock_guard<std::mutex> lock(published_mutex_);
    snapshot = published_;
  }
  snapshot.queue_depth = queue_.SizeApprox();
  return snapshot;
}

void SinkWorker::Deliver(std::vector<Sample>& batch) {
  ++batches_;
  DeliverPart(std::span<const Sample>(batch.data(), batch.size()));
}

void SinkWorker::DeliverPart(std::span<const Sample> part) {
  static LogRateLimiter undelivered_log(5, absl::Minutes(1));

  const absl::Status status = PushWithRetries(part);
  if (status.ok()) return;

  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    counters_.undelivered += part.size();
    uint64_t suppressed = 0;
    if (undelivered_log.Allow(&suppressed)) {
      spdlog::warn(
          "sink {}: shutdown deadline passed, {} samples are undelivered "
          "({} similar lines suppressed)",
          sink_->name(), part.size(), suppressed);
    }
    return;
  }

  // Halve a batch the receiver refused, so the samples it accepts still land
  // and the search ends at the samples it rejects.
  if (IsSplittable(status) && part.size() > 1) {
    const size_t half = part.size() / 2;
    DeliverPart(part.first(half));
    DeliverPart(part.subspan(half));
    return;
  }
  CountRejected(part, status);
}

absl::Status SinkWorker::PushWithRetries(std::span<const Sample> part) {
  static LogRateLimiter retry_log(5, absl::Minutes(1));

  for (int attempt = 0;; ++attempt) {
    if (DeadlinePassed()) {
      return absl::DeadlineExceededError("shutdown deadline passed");
    }

    ++counters_.pushes;
    const absl::Status status = sink_->Push(part);
    if (status.ok()) {
      counters_.delivered += part.size();
      return status;
    }
    if (status.code() != absl::StatusCode::kUnavailable) return status;

    ++counters_.retries;
    const absl::Duration delay = RetryDelay(attempt, status);
    uint64_t suppressed = 0;
    if (retry_log.Allow(&suppressed)) {
      spdlog::warn(
          "sink {}: push of {} samples failed, retry {} in {}: {} "
          "({} similar lines suppressed)",
          sink_->name(), part.size(), attempt + 1,
          absl::FormatDuration(delay), Truncated(ToStd(status.message())),
          suppressed);
    }
    WaitBeforeRetry(delay);
  }
}

void SinkWorker::CountRejected(std::span<const Sample> part,
                               const absl::Status& status) {
  static LogRateLimiter rejected_log(10, absl::Minutes(1));

  counters_.rejected += part.size();
  counters_.rejected_by_http_status[HttpStatusOf(status).value_or(0)] +=
      part.size();
  uint64_t suppressed = 0;
  if (rejected_log.Allow(&suppressed)) {
    const Sample& first = part.front();
    spdlog::error(
        "sink {}: {} samples rejected, not retried (first: {} at {} ms): {} "
        "({} similar lines suppressed)",
        sink_->name(), part.size(), first.series.ToString(),
        first.timestamp_ms, Truncated(ToStd(status.message())), suppressed);
  }
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
  const absl::Time started = absl::Now();
  std::unique_lock<std::mutex> lock(mutex_);
  const absl::Time wake = std::min(started + delay, deadline_);
  const absl::Time deadline_at_start = deadline_;
  // Wake early when a (new) deadline arrives, so shutdown is not held up by
  // a long backoff.
  deadline_changed_.wait_until(
      lock, absl::ToChronoTime(wake),
      [&] { return deadline_ != deadline_at_start || absl::Now() >= wake; });
  counters_.retry_wait += absl::Now() - started;
}

}  // namespace converge

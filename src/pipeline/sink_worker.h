// The batching sink thread: takes samples from the shards, closes a batch on
// a sample count, a byte size or a flush interval, and pushes it through a
// Sink with retries.
//
// Retries: a kUnavailable push is retried with exponential backoff from
// retry_min to retry_max with jitter, or after the receiver's Retry-After.
// Until a deadline is set, retries never give up, so a receiver outage fills
// the bounded queue and pressure flows back to the shards and fetchers
// instead of losing data.
//
// Rejections: any other error is not retried as it is. When the receiver
// answered with an HTTP 4xx, the batch is split in halves and each half is
// pushed again, down to single samples, so the samples it accepts land and
// only the ones it rejects are counted (by HTTP status) and logged. Other
// rejections count the whole batch. Either way the next batch goes out.
//
// Corrections: with `coalesce_corrections`, a sample for a (series,
// timestamp) already waiting in the open batch replaces the waiting value in
// place instead of adding a second one, and the replaced sample is counted as
// superseded. Samples of one series keep the order the shards sent them in.
//
// Shutdown: once SetDeadline() has been called and the deadline has passed,
// every batch still pending (and every sample that arrives later) is counted
// as undelivered, so shards blocked on the queue can always finish.
//
// Thread safety: Run() is the thread body. queue(), Finish() and
// SetDeadline() may be called from any thread. The counters may be read only
// after the thread has been joined.

#ifndef CONVERGE_PIPELINE_SINK_WORKER_H_
#define CONVERGE_PIPELINE_SINK_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <vector>

#include "absl/time/time.h"
#include "converge/sink.h"
#include "converge/telemetry.h"
#include "pipeline/bounded_queue.h"

namespace converge {

struct SinkWorkerOptions {
  size_t batch_max_samples = 5000;
  size_t batch_max_bytes = 4 << 20;
  absl::Duration flush_interval = absl::Seconds(1);
  absl::Duration retry_min = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(1);
  bool coalesce_corrections = false;
};

// Outcome counts of every sample the worker received. delivered + rejected +
// undelivered + superseded equals the samples received.
struct SinkCounters {
  uint64_t delivered = 0;
  uint64_t rejected = 0;     // refused by the receiver, not retried
  uint64_t undelivered = 0;  // still pending when the deadline passed
  uint64_t superseded = 0;   // replaced by a correction before sending
  uint64_t retries = 0;      // failed pushes that were tried again
  uint64_t pushes = 0;       // calls to Sink::Push, retries and splits included
  absl::Duration retry_wait;  // time spent waiting between retries
  std::map<int, uint64_t> rejected_by_http_status;  // 0: no HTTP status
};

class SinkWorker {
 public:
  // `sink` must outlive the worker and must already be open.
  SinkWorker(const SinkWorkerOptions& options, Sink* sink,
             size_t queue_capacity);

  BoundedQueue<Sample>& queue() { return queue_; }

  // Thread body. Returns once Finish() was called and every sample it
  // announced has been delivered, rejected or counted as undelivered.
  void Run();

  // Announces that all producers are done and enqueued `total` samples in
  // all, and wakes the thread. REQUIRES: every producer's pushes returned
  // before this call (e.g. its thread was joined).
  void Finish(uint64_t total);

  // Sets the time after which pending samples are counted as undelivered
  // instead of retried, and wakes a retry wait. The earliest deadline wins.
  void SetDeadline(absl::Time deadline);

  // After Run().
  const SinkCounters& counters() const { return counters_; }

  // Any thread: the counters as of the last delivered batch.
  SinkSnapshot Snapshot() const;

 private:
  // The batch being filled, with an index by (series, timestamp) for
  // coalescing corrections.
  class OpenBatch;

  void Deliver(std::vector<Sample>& batch);
  void DeliverPart(std::span<const Sample> part);
  // Pushes `part` until it is delivered, rejected or the deadline passes.
  absl::Status PushWithRetries(std::span<const Sample> part);
  void CountRejected(std::span<const Sample> part, const absl::Status& status);
  absl::Duration RetryDelay(int attempt, const absl::Status& status);
  bool DeadlinePassed();
  // Sleeps for `delay` or until SetDeadline() is called.
  void WaitBeforeRetry(absl::Duration delay);
  void Publish(uint64_t received);

  // Constant after construction.
  const SinkWorkerOptions options_;
  Sink* const sink_;

  BoundedQueue<Sample> queue_;
  std::atomic<uint64_t> expected_total_{0};  // written before the sentinel

  std::mutex mutex_;
  std::condition_variable deadline_changed_;
  absl::Time deadline_ = absl::InfiniteFuture();  // guarded by mutex_

  // Owned by the sink thread.
  SinkCounters counters_;
  uint64_t batches_ = 0;

  mutable std::mutex published_mutex_;
  SinkSnapshot published_;  // guarded by published_mutex_
};

}  // namespace converge

#endif  // CONVERGE_PIPELINE_SINK_WORKER_H_

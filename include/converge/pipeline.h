// The converge pipeline: a scheduler, fetcher threads, shard threads that own
// the engines, and one batching sink thread, linked by bounded lock-free
// queues.
//
//   scheduler --tasks--> fetchers --observations--> shards --samples--> sink
//
// Every series is hashed on the fetcher side and routed to one shard, whose
// thread alone owns that series' windows and trackers. A tick's Expire(now)
// runs on each shard only after every observation of that tick has reached
// it: fetchers send, per task and per shard, a marker with the number of
// observations they enqueued, and a shard completes a tick once it has every
// task's marker and that many observations.
//
// Thread safety: Run() is called once, from one thread. RequestStop() may be
// called from any thread, any number of times, before or during Run().

#ifndef CONVERGE_PIPELINE_H_
#define CONVERGE_PIPELINE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/engine.h"
#include "converge/sink.h"
#include "converge/source.h"
#include "converge/telemetry.h"

namespace converge {

struct PipelineOptions {
  EngineOptions engine;

  int shards = 1;    // shard threads, each owning one engine; 1 .. 256
  int fetchers = 1;  // fetcher threads; 1 .. 256

  // Bounds of the hand-off queues. When a queue is full its producers wait,
  // so pressure flows back from the sink to the shards to the fetchers.
  // Observations per shard, rounded up to whole messages of 4096.
  size_t shard_queue_capacity = 1 << 16;
  size_t sink_queue_capacity = 1 << 16;   // samples

  // A batch is pushed when it reaches either size or has waited this long.
  size_t batch_max_samples = 5000;
  size_t batch_max_bytes = 4 << 20;  // estimated encoded bytes
  absl::Duration flush_interval = absl::Seconds(1);

  // Retry delays for kUnavailable pushes: doubling from min to max, with
  // jitter, or the receiver's Retry-After when it sends one.
  absl::Duration retry_min = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(1);

  // When a correction for a (series, timestamp) arrives while the earlier
  // value still waits in the open batch, send only the correction. Off keeps
  // every emitted sample, as the file sink's record of the engine's output
  // needs.
  bool coalesce_corrections = false;

  // From the stop request, how long the sink may keep delivering before what
  // is left is counted as undelivered.
  absl::Duration shutdown_timeout = absl::Seconds(30);
};

// Returns OK, or kInvalidArgument naming the field, the value and the rule.
absl::Status ValidatePipelineOptions(const PipelineOptions& options);

// Counters of one run, for the exit summary and tests.
struct PipelineSummary {
  EngineStats engine;               // totals over all shards
  SourceStats source;
  uint64_t ticks = 0;
  uint64_t fetches_ok = 0;
  uint64_t fetches_failed = 0;
  uint64_t observations_fetched = 0;
  uint64_t samples_delivered = 0;
  uint64_t samples_rejected = 0;     // refused by the receiver, not retried
  uint64_t samples_undelivered = 0;  // still pending at the shutdown deadline
  uint64_t samples_superseded = 0;   // replaced by a correction before sending
  std::map<int, uint64_t> rejected_by_http_status;  // 0: no HTTP status
  uint64_t pushes = 0;
  uint64_t push_retries = 0;
  absl::Duration retry_wait;         // time the sink spent waiting to retry
  bool stopped_by_request = false;   // RequestStop() rather than end of input
  absl::Duration wall_time;

  // One line: observations, samples by cause, late drops, wall time, rate.
  std::string ToLine() const;
};

class Pipeline {
 public:
  // Returns kInvalidArgument for invalid options.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(
      const PipelineOptions& options, std::unique_ptr<Source> source,
      std::unique_ptr<Sink> sink);

  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Runs until the source's input ends or RequestStop() is called, then shuts
  // down: no new ticks, fetched observations are ingested, every shard is
  // flushed, and the sink delivers until `shutdown_timeout` has passed since
  // the stop began. Returns the summary, or an error when the sink could not
  // be opened. Call once.
  absl::StatusOr<PipelineSummary> Run();

  // Asks Run() to shut down. Safe from any thread; idempotent.
  void RequestStop();

  // Copies the counters the workers last published. Safe from any thread,
  // before, during and after Run().
  PipelineSnapshot Snapshot() const;

 private:
  class Impl;
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace converge

#endif  // CONVERGE_PIPELINE_H_

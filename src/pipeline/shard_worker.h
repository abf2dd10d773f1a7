// One shard: a thread that alone owns the engines, windows and trackers of
// every series routed to it.
//
// The shard keeps one Engine per source partition (a zone group). A source
// fetches each partition's data separately, often at different ticks (one
// backfill chunk is one call per partition), so a bucket is opened and closed
// per partition: a bucket that partition A already closed still takes
// partition B's first observations as a fresh window instead of dropping them
// as late. Partitions have disjoint series, so nothing is duplicated.
//
// The worker drains its queue, ingests each tick's observations, and expires
// the tick once it is complete (see messages.h for how completeness is known
// without cross-producer ordering). Observations of a later tick that arrive
// early wait in a per-tick buffer; the scheduler keeps at most two ticks in
// flight, so that buffer contains at most one tick.
//
// Samples leave a shard once per tick, sorted by series and timestamp, so the
// samples of a series reach the sink in the same order for any number of
// shards and fetchers.
//
// Thread safety: Run() is the thread body. queue() may be used by producers
// on any thread. The accessors marked "after Run()" may only be read once the
// thread has been joined.

#ifndef CONVERGE_PIPELINE_SHARD_WORKER_H_
#define CONVERGE_PIPELINE_SHARD_WORKER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "converge/engine.h"
#include "converge/telemetry.h"
#include "pipeline/bounded_queue.h"
#include "pipeline/messages.h"
#include "pipeline/tick_progress.h"

namespace converge {

class ShardWorker {
 public:
  // REQUIRES: ValidateEngineOptions(engine_options).ok().
  // `queue_capacity` counts messages.
  ShardWorker(int index, const EngineOptions& engine_options,
              size_t queue_capacity, BoundedQueue<Sample>* sink_queue,
              TickProgress* progress);

  BoundedQueue<ShardMessage>& queue() { return queue_; }

  // Thread body: returns after a kFinish message and every tick before it
  // has been completed and the engine flushed.
  void Run();

  // After Run(): samples handed to the sink queue and the engine's stats.
  uint64_t samples_sent() const { return samples_sent_; }
  EngineStats stats() const;

  // Any thread: the stats published after the last completed tick, and the
  // histograms of what this shard pushed so far.
  struct Published {
    ShardSnapshot shard;
    uint64_t samples_sent = 0;
    Histogram first_push_age_seconds = MakeFirstPushAgeHistogram();
    Histogram correction_size = MakeCorrectionSizeHistogram();
  };
  Published Snapshot() const;

 private:
  struct TickState {
    bool started = false;
    absl::Time now;
    uint64_t tasks_expected = 0;
    uint64_t tasks_done = 0;
    uint64_t declared = 0;  // observations the markers announced
    uint64_t received = 0;  // observations that arrived
    // Observation messages that arrived before the tick was current.
    std::vector<ShardMessage> early;
    // Per finished task: its partition and the buckets it returned.
    std::vector<std::pair<uint32_t, std::shared_ptr<const std::vector<int64_t>>>>
        buckets;
  };

  // The engine of `partition`, created on first use.
  Engine& EngineFor(uint32_t partition);

  void Handle(ShardMessage& message);
  // Ingests the observations of a kObservations message and releases its
  // batch.
  void Ingest(ShardMessage& message);
  void Publish();
  bool CurrentTickComplete();
  void CompleteCurrentTick();
  void SendSamples();

  // Constant after construction.
  const int index_;
  const EngineOptions engine_options_;
  BoundedQueue<Sample>* const sink_queue_;
  TickProgress* const progress_;

  BoundedQueue<ShardMessage> queue_;

  // Owned by the shard thread.
  // Ordered by partition, so that expiry walks them in a fixed order.
  absl::btree_map<uint32_t, std::unique_ptr<Engine>> engines_;
  uint32_t cached_partition_ = 0;
  Engine* cached_engine_ = nullptr;
  absl::flat_hash_map<uint64_t, TickState> ticks_;
  uint64_t current_tick_ = 0;
  bool finish_seen_ = false;
  uint64_t finish_tick_ = 0;
  std::optional<BoundedQueue<Sample>::ProducerToken> sink_token_;
  std::vector<Sample> pending_samples_;  // emitted during the current tick
  std::vector<Sample> sorted_samples_;   // the same, in the order they leave
  // The message being ingested, as views into its batch; empty otherwise.
  std::vector<ObservationView> views_;
  uint64_t samples_sent_ = 0;
  absl::Time last_now_ = absl::UnixEpoch();  // the last completed tick's now
  Histogram first_push_age_ = MakeFirstPushAgeHistogram();
  Histogram correction_size_ = MakeCorrectionSizeHistogram();

  mutable std::mutex published_mutex_;
  Published published_;  // guarded by published_mutex_
};

}  // namespace converge

#endif  // CONVERGE_PIPELINE_SHARD_WORKER_H_

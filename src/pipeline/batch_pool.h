// Recycles observation batches between the fetchers that fill them and the
// shards that ingest them.
//
// A fetcher takes a batch for each fetch and shares it with the shards.
// Whichever thread releases it last, a shard or the fetcher, gives it back
// here. The next fetch reuses the batch's buffers, so a steady pipeline
// stops allocating once every batch in flight has grown to its working
// size. The pool keeps at most `capacity` idle batches and frees the rest.
// An idle batch keeps the memory of the largest fetch it held.
//
// Thread safety: Take() and Give() may be called from any thread.

#ifndef CONVERGE_PIPELINE_BATCH_POOL_H_
#define CONVERGE_PIPELINE_BATCH_POOL_H_

#include <cstddef>
#include <memory>

#include <concurrentqueue/concurrentqueue.h>

#include "converge/observation_batch.h"

namespace converge {

class BatchPool {
 public:
  explicit BatchPool(size_t capacity) : capacity_(capacity) {}

  BatchPool(const BatchPool&) = delete;
  BatchPool& operator=(const BatchPool&) = delete;

  // An empty batch: an idle one when there is one, else a new one.
  std::unique_ptr<ObservationBatch> Take() {
    std::unique_ptr<ObservationBatch> batch;
    if (idle_.try_dequeue(batch)) return batch;
    return std::make_unique<ObservationBatch>();
  }

  // Empties `batch` and keeps it for a later Take(), unless the pool already
  // contains `capacity` batches (approximately: the count may lag behind
  // concurrent calls).
  void Give(std::unique_ptr<ObservationBatch> batch) {
    if (batch == nullptr || idle_.size_approx() >= capacity_) return;
    batch->Clear();
    idle_.enqueue(std::move(batch));
  }

 private:
  const size_t capacity_;
  moodycamel::ConcurrentQueue<std::unique_ptr<ObservationBatch>> idle_;
};

}  // namespace converge

#endif  // CONVERGE_PIPELINE_BATCH_POOL_H_

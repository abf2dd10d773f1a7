// What travels on the pipeline's queues.
//
// Observations travel by reference: a fetcher shares the batch a fetch
// filled with every shard and sends each shard the positions of its own
// observations in it, up to 4,096 per message. The batch goes back to the
// pool once neither the fetcher nor any message refers to it.
//
// A shard learns that a tick is complete without relying on any order across
// producers: every fetcher sends, per task and per shard, a kTaskDone marker
// carrying how many observations of that task it routed to the shard, and
// the scheduler sends a kTickStart carrying the tick's task count. A tick is
// complete on a shard once it has the kTickStart, every task's marker, and as
// many observations as the markers declare.

#ifndef CONVERGE_PIPELINE_MESSAGES_H_
#define CONVERGE_PIPELINE_MESSAGES_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "converge/observation_batch.h"

namespace converge {

struct ShardMessage {
  enum class Kind : uint8_t {
    kObservations,  // `positions` in `batch` are observations of `tick`
    kTaskDone,      // a task of `tick` routed `count` observations here
    kTickStart,     // `tick` has `count` tasks and expires at `now`
    kFinish,        // no tick at or after `tick` will come; flush and stop
  };

  Kind kind = Kind::kObservations;
  uint64_t tick = 0;
  uint32_t partition = 0;  // kObservations, kTaskDone: the task's partition
  uint64_t count = 0;
  absl::Time now;
  std::shared_ptr<const ObservationBatch> batch;
  std::vector<uint32_t> positions;
  // kTaskDone: the distinct buckets the whole task returned, shared by the
  // markers of every shard. Each shard opens these windows even where none
  // of its series had data, so "already closed" means the same on every
  // shard and the output does not depend on the shard count.
  std::shared_ptr<const std::vector<int64_t>> buckets;
};

}  // namespace converge

#endif  // CONVERGE_PIPELINE_MESSAGES_H_

// A bounded multi-producer, multi-consumer queue built on
// moodycamel::BlockingConcurrentQueue.
//
// moodycamel's queue grows without bound under `enqueue`. The bound here is a
// semaphore of free slots: a producer takes slots before it enqueues and a
// consumer returns them after it dequeues, so at most `capacity` items sit in
// the queue and a full queue blocks its producers. That blocking is how
// pressure flows back from the sink to the shards to the fetchers.
//
// Ordering: items enqueued through one producer token come out in the order
// they went in; items of different producers have no order between them.
//
// Thread safety: any number of threads may push and pop concurrently, each
// with its own token (tokens are not thread-safe).

#ifndef CONVERGE_PIPELINE_BOUNDED_QUEUE_H_
#define CONVERGE_PIPELINE_BOUNDED_QUEUE_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/lightweightsemaphore.h>

namespace converge {

template <typename T>
class BoundedQueue {
 public:
  using ProducerToken = moodycamel::ProducerToken;
  using ConsumerToken = moodycamel::ConsumerToken;

  // REQUIRES: capacity >= 1.
  explicit BoundedQueue(size_t capacity)
      : capacity_(capacity), free_slots_(static_cast<ssize_t>(capacity)) {
    assert(capacity >= 1);
  }

  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  ProducerToken MakeProducerToken() { return ProducerToken(queue_); }
  ConsumerToken MakeConsumerToken() { return ConsumerToken(queue_); }

  // Moves `count` items from `items` into the queue, blocking while it is
  // full. Items go in as soon as slots free up, a run at a time, so a
  // producer never holds slots while it waits for more (two producers each
  // holding part of what they need could otherwise wait on each other).
  void PushBulk(ProducerToken& token, T* items, size_t count) {
    size_t done = 0;
    while (done < count) {
      const ssize_t wanted = static_cast<ssize_t>(count - done);
      const ssize_t granted = free_slots_.waitMany(wanted);
      if (granted <= 0) continue;  // spurious return; wait again
      const bool ok = queue_.enqueue_bulk(
          token, std::make_move_iterator(items + done),
          static_cast<size_t>(granted));
      assert(ok);  // enqueue_bulk with a token allocates; it fails only
      (void)ok;    // when memory runs out, which aborts elsewhere
      done += static_cast<size_t>(granted);
    }
  }

  void Push(ProducerToken& token, T item) { PushBulk(token, &item, 1); }

  // Moves up to `max` items into `items`, waiting until at least one is
  // there. Returns the number taken (at least 1).
  size_t PopBulk(ConsumerToken& token, T* items, size_t max) {
    size_t taken = 0;
    while (taken == 0) taken = queue_.wait_dequeue_bulk(token, items, max);
    free_slots_.signal(static_cast<ssize_t>(taken));
    return taken;
  }

  // Same as PopBulk(), but waits at most `timeout_us` microseconds and may
  // return 0.
  size_t PopBulkFor(ConsumerToken& token, T* items, size_t max,
                    int64_t timeout_us) {
    const size_t taken = queue_.wait_dequeue_bulk_timed(
        token, items, max, std::max<int64_t>(timeout_us, 0));
    if (taken > 0) free_slots_.signal(static_cast<ssize_t>(taken));
    return taken;
  }

  // An estimate that can lag behind pushes and pops in flight: for gauges,
  // never for deciding that the queue is drained.
  size_t SizeApprox() const { return queue_.size_approx(); }

  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  moodycamel::BlockingConcurrentQueue<T> queue_;
  moodycamel::LightweightSemaphore free_slots_;
};

}  // namespace converge

#endif  // CONVERGE_PIPELINE_BOUNDED_QUEUE_H_

// The stabilization engine: decides when a still-settling (series, bucket)
// value is final enough to push.
//
// The engine is pure. It never reads a clock, starts a thread or does I/O:
// every call that needs the time receives `now` from its caller, so the same
// calls always produce the same samples.
//
// Thread safety: an Engine is not thread-safe. In the pipeline each shard
// thread owns one Engine and is the only thread that touches it.

#ifndef CONVERGE_ENGINE_H_
#define CONVERGE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/observation.h"

namespace converge {

struct EngineOptions {
  // Number of identical observations in a row after which a value is pushed.
  // 1 pushes every new distinct value at once. Must be >= 1. Default 3.
  int threshold = 3;

  // A window closes once `now - bucket >= window_ttl`; its unpushed values are
  // then force-flushed. Must be greater than `lookback`. Default 15 minutes.
  absl::Duration window_ttl = absl::Minutes(15);

  // How far back the live lane re-fetches. Only used to validate window_ttl:
  // the live lane must never refetch a bucket whose window already closed.
  // Default 10 minutes.
  absl::Duration lookback = absl::Minutes(10);
};

// Returns OK, or kInvalidArgument naming the field, the value and the rule.
absl::Status ValidateEngineOptions(const EngineOptions& options);

// Counters and gauges of one engine. Counters only grow.
struct EngineStats {
  uint64_t open_windows = 0;  // gauge
  uint64_t trackers = 0;      // gauge: open (series, bucket) trackers
  uint64_t series = 0;        // gauge: distinct series in open windows
  uint64_t observations = 0;  // accepted by Ingest, late ones included
  uint64_t samples_stable = 0;   // pushed after `threshold` equal values
  uint64_t samples_forced = 0;   // forced flushes at window TTL
  uint64_t samples_flushed = 0;  // emitted by Flush() at shutdown
  uint64_t post_stabilization_updates = 0;
  uint64_t down_revisions = 0;
  uint64_t late_dropped = 0;  // observations for a bucket already closed

  uint64_t samples_total() const {
    return samples_stable + samples_forced + samples_flushed;
  }

  // Adds every field of `other` to this one (for totals across shards).
  void Add(const EngineStats& other);
};

// A series interned in advance by Engine::Prepare(). Ingesting through a
// handle skips the key lookup. A handle belongs to the engine that returned
// it and stays valid until the matching Engine::Release().
struct SeriesHandle {
  uint32_t id = 0;
};

// An observation of a prepared series.
struct PreparedObservation {
  SeriesHandle series;
  int64_t bucket_ms = 0;  // bucket start, Unix milliseconds, UTC
  uint64_t value = 0;
};

class Engine {
 public:
  // Returns kInvalidArgument when `options` fails ValidateEngineOptions().
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      const EngineOptions& options);

  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Records one observation and appends the sample it triggers, if any, to
  // `out`. An observation for a bucket this engine already closed is dropped
  // and counted in `late_dropped`; it never reopens the window.
  void Ingest(const Observation& observation, std::vector<Sample>* out);

  // Same as Ingest(Observation) for a key the caller keeps, without copying
  // it into an Observation first.
  //
  // Performance: the engine remembers which series followed which, and a
  // lookup that follows the same order as before skips the hash index. Keys
  // are fastest when a source lists its series in a stable order.
  void Ingest(const SeriesKey& series, int64_t bucket_ms, uint64_t value,
              std::vector<Sample>* out);

  // Same as Ingest(SeriesKey) for a key given by its encoding and hash.
  // REQUIRES: `series.encoded` is the encoding of a valid SeriesKey and
  // `series.hash` is StableHash(series.encoded).
  void Ingest(SeriesKeyView series, int64_t bucket_ms, uint64_t value,
              std::vector<Sample>* out);

  // Interns `series` and pins it: a pinned series keeps its handle while no
  // open window contains a tracker for it. Preparing an interned key returns
  // its existing handle and adds a pin.
  SeriesHandle Prepare(const SeriesKey& series);

  // Removes one pin added by Prepare(). Once a series has no pins and no open
  // trackers it is released, and its handle must not be used again.
  // REQUIRES: `series` came from Prepare() on this engine and still has a pin.
  void Release(SeriesHandle series);

  // Same as Ingest(SeriesKey) for a prepared series, without a key lookup.
  // REQUIRES: `series` came from Prepare() on this engine and still has a pin.
  void Ingest(SeriesHandle series, int64_t bucket_ms, uint64_t value,
              std::vector<Sample>* out);

  // Ingests `observations` in order, with the same effect and the same
  // samples as one Ingest() call for each. When keyed observations do not
  // follow the order seen before, large batches are faster than single calls,
  // because the engine starts loading the index entry of each series a few
  // observations ahead. REQUIRES: as for the matching Ingest().
  void IngestBatch(std::span<const Observation> observations,
                   std::vector<Sample>* out);
  void IngestBatch(std::span<const ObservationView> observations,
                   std::vector<Sample>* out);
  void IngestBatch(std::span<const PreparedObservation> observations,
                   std::vector<Sample>* out);

  // Opens an empty window for `bucket_ms` unless it is open or was closed.
  // The pipeline calls this on every shard for every bucket a fetch returned,
  // so that "already closed" means the same on every shard whichever series
  // landed there.
  void NoteBucket(int64_t bucket_ms);

  // Closes every window with `now - bucket >= window_ttl`, appending one
  // kForced sample for each of its trackers whose latest value was never
  // pushed, then releases the window. A `now` older than an earlier one closes
  // nothing new.
  void Expire(absl::Time now, std::vector<Sample>* out);

  // Appends one kFlushed sample for every unpushed tracker of every open
  // window, then releases all windows. Used at shutdown.
  void Flush(std::vector<Sample>* out);

  const EngineStats& stats() const;
  const EngineOptions& options() const;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace converge

#endif  // CONVERGE_ENGINE_H_

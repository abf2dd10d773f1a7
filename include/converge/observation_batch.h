// ObservationBatch: many observations with their series keys packed into one
// buffer.
//
// A fetch returns thousands of observations. Holding each key in its own
// SeriesKey costs one heap allocation per observation, and in the pipeline
// the thread that frees it is not the one that allocated it. A batch copies
// every key's canonical encoding into one growing byte buffer next to a
// fixed-size entry per observation, so filling a batch allocates only when a
// buffer grows, and Clear() keeps both buffers for the next fill.
//
// Thread safety: none. A batch is filled by one thread and may then be moved
// to another.

#ifndef CONVERGE_OBSERVATION_BATCH_H_
#define CONVERGE_OBSERVATION_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "converge/observation.h"
#include "converge/series.h"

namespace converge {

class ObservationBatch {
 public:
  ObservationBatch() = default;
  ObservationBatch(ObservationBatch&&) noexcept = default;
  ObservationBatch& operator=(ObservationBatch&&) noexcept = default;
  ObservationBatch(const ObservationBatch&) = default;
  ObservationBatch& operator=(const ObservationBatch&) = default;

  // Appends one observation, copying the key's bytes.
  // REQUIRES: `series` is a valid key view (see SeriesKeyView) whose bytes do
  // not point into this batch.
  void Add(SeriesKeyView series, int64_t bucket_ms, uint64_t value) {
    entries_.push_back(Entry{keys_.size(), series.encoded.size(), series.hash,
                             bucket_ms, value});
    keys_.append(series.encoded);
  }
  void Add(const SeriesKey& series, int64_t bucket_ms, uint64_t value) {
    Add(SeriesKeyView::Of(series), bucket_ms, value);
  }
  void Add(const ObservationView& observation) {
    Add(observation.series, observation.bucket_ms, observation.value);
  }
  void Add(const Observation& observation) {
    Add(SeriesKeyView::Of(observation.series), observation.bucket_ms,
        observation.value);
  }

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // Observation `i`, its key a view into this batch, valid until the next
  // Add() or Clear(). REQUIRES: i < size().
  ObservationView operator[](size_t i) const {
    const Entry& entry = entries_[i];
    return ObservationView{
        SeriesKeyView{std::string_view(keys_).substr(entry.key_offset,
                                                     entry.key_size),
                      entry.hash},
        entry.bucket_ms, entry.value};
  }

  // The key hash and the bucket of observation `i`, without building a view.
  // REQUIRES: i < size().
  uint64_t hash(size_t i) const { return entries_[i].hash; }
  int64_t bucket_ms(size_t i) const { return entries_[i].bucket_ms; }

  // Observation `i` with a key of its own. For tests and slow paths.
  Observation ToObservation(size_t i) const {
    const ObservationView view = (*this)[i];
    return Observation{SeriesKey::FromEncoded(std::string(view.series.encoded)),
                       view.bucket_ms, view.value};
  }

  // Appends every observation to `out`, each with a key of its own.
  void AppendTo(std::vector<Observation>* out) const {
    out->reserve(out->size() + size());
    for (size_t i = 0; i < size(); ++i) out->push_back(ToObservation(i));
  }

  // Makes room for `observations` more observations with `key_bytes` more
  // key bytes in total.
  void Reserve(size_t observations, size_t key_bytes) {
    entries_.reserve(entries_.size() + observations);
    keys_.reserve(keys_.size() + key_bytes);
  }

  // Removes every observation and keeps the memory for reuse.
  void Clear() {
    entries_.clear();
    keys_.clear();
  }

 private:
  struct Entry {
    size_t key_offset;
    size_t key_size;
    uint64_t hash;
    int64_t bucket_ms;
    uint64_t value;
  };

  std::vector<Entry> entries_;
  std::string keys_;  // every key's encoding, in entry order
};

}  // namespace converge

#endif  // CONVERGE_OBSERVATION_BATCH_H_

// The two values that flow through converge: observations (what a fetch read)
// and samples (what the engine decided to push).
//
// Thread safety: plain value types.

#ifndef CONVERGE_OBSERVATION_H_
#define CONVERGE_OBSERVATION_H_

#include <cstdint>
#include <string_view>

#include "converge/series.h"

namespace converge {

// A snapshot of one (series, bucket) as read by one fetch. It replaces what was
// seen before for the same (series, bucket); it is never added to it.
struct Observation {
  SeriesKey series;
  int64_t bucket_ms = 0;  // bucket start, Unix milliseconds, UTC
  uint64_t value = 0;
};

// A series key given as its canonical encoding (the bytes
// SeriesKey::encoded() returns) and StableHash() of those bytes. The bytes
// stay owned by the caller and must outlive the call that receives the view.
// The engine copies them when the series is new to it.
struct SeriesKeyView {
  std::string_view encoded;
  uint64_t hash = 0;

  static SeriesKeyView Of(const SeriesKey& key) {
    return SeriesKeyView{key.encoded(), key.hash()};
  }
};

// An observation whose series key stays owned by the caller.
struct ObservationView {
  SeriesKeyView series;
  int64_t bucket_ms = 0;  // bucket start, Unix milliseconds, UTC
  uint64_t value = 0;
};

// The reason the engine emitted a sample.
enum class SampleCause : uint8_t {
  kStable = 0,   // the value repeated `threshold` times in a row
  kForced = 1,   // the window reached its TTL before the value settled
  kFlushed = 2,  // shutdown flushed a value that had not been pushed
};

inline constexpr int kSampleCauseCount = 3;

std::string_view SampleCauseName(SampleCause cause);

// A value ready to push, stamped with its bucket's own time.
struct Sample {
  SeriesKey series;
  int64_t timestamp_ms = 0;  // bucket start, Unix milliseconds, UTC
  uint64_t value = 0;
  SampleCause cause = SampleCause::kStable;
  // True when this (series, bucket) had pushed a different value before;
  // `previous_value` is that value. For correction statistics.
  bool repush = false;
  uint64_t previous_value = 0;
};

// Orders samples by series, then timestamp, then value, so that two runs can
// be compared independently of how shards interleaved their output.
inline bool SampleLess(const Sample& a, const Sample& b) {
  if (a.series.encoded() != b.series.encoded()) return a.series < b.series;
  if (a.timestamp_ms != b.timestamp_ms) return a.timestamp_ms < b.timestamp_ms;
  return a.value < b.value;
}

}  // namespace converge

#endif  // CONVERGE_OBSERVATION_H_

// Workload W1: the reference ingest workload that converge is compared on.
//
// Z zones x S series per zone; series (z, s) is
// cloudflare_zone_requests_status{zone="zone-<z>", status="<200+s>"}. Bucket m
// starts at T0 + 60 s * m (T0 = 2026-06-01T00:00:00Z). Tick k happens at
// now = T0 + 30 s * k and re-fetches buckets max(0, M - 9) .. M, where
// M = k / 2, ordered by bucket, then zone, then series. It ingests them and
// then expires at `now`; there is no flush at the end. The value of (z, s)
// in bucket m at tick k grows for four ticks and then stays:
//   age = k - 2m, f = 1000 + ((z*7919 + s*104729 + m*15485863) mod 100000),
//   value = floor(f * min(age, 4) / 4).
// With threshold 3 and a 15 minute window TTL, a correct engine emits a fixed
// set of samples whose digest (below) a run must reproduce.

#ifndef CONVERGE_BENCH_W1_WORKLOAD_H_
#define CONVERGE_BENCH_W1_WORKLOAD_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "converge/observation.h"

namespace converge::bench {

inline constexpr int64_t kW1StartMs = 1'780'272'000'000;  // 2026-06-01T00Z
inline constexpr char kW1Metric[] = "cloudflare_zone_requests_status";

struct W1Shape {
  int zones;
  int series_per_zone;
  int ticks;
};

inline constexpr W1Shape kW1{1000, 100, 120};
inline constexpr W1Shape kW1Large{10000, 100, 40};

inline int64_t W1NowMs(int tick) { return kW1StartMs + int64_t{30'000} * tick; }
inline int64_t W1BucketMs(int minute) {
  return kW1StartMs + int64_t{60'000} * minute;
}
inline int W1FirstMinute(int tick) { return std::max(0, tick / 2 - 9); }
inline int W1LastMinute(int tick) { return tick / 2; }

inline uint64_t W1Value(int zone, int series, int minute, int tick) {
  const uint64_t age = static_cast<uint64_t>(tick - 2 * minute);
  const uint64_t f =
      1000 + (static_cast<uint64_t>(zone) * 7919 +
              static_cast<uint64_t>(series) * 104729 +
              static_cast<uint64_t>(minute) * 15485863) %
                 100000;
  return f * std::min<uint64_t>(age, 4) / 4;
}

// Calls `visit(zone, series, bucket_ms, value)` for every observation that
// tick `tick` fetches from zones [first_zone, end_zone), in W1 order: by
// bucket, then zone, then series.
template <typename Visit>
void ForEachW1Observation(const W1Shape& shape, int tick, int first_zone,
                          int end_zone, Visit visit) {
  for (int m = W1FirstMinute(tick); m <= W1LastMinute(tick); ++m) {
    const int64_t bucket_ms = W1BucketMs(m);
    for (int z = first_zone; z < end_zone; ++z) {
      for (int s = 0; s < shape.series_per_zone; ++s) {
        visit(z, s, bucket_ms, W1Value(z, s, m, tick));
      }
    }
  }
}

inline uint64_t W1Observations(const W1Shape& shape) {
  uint64_t total = 0;
  for (int tick = 0; tick < shape.ticks; ++tick) {
    total += static_cast<uint64_t>(W1LastMinute(tick) - W1FirstMinute(tick) + 1);
  }
  return total * shape.zones * shape.series_per_zone;
}

// Count, sum of values, and the wrapping sum and XOR of FNV-1a 64 hashes of
// `<series text>|<timestamp in Unix seconds>|<value>` over emitted samples.
struct W1Digest {
  uint64_t count = 0;
  uint64_t value_sum = 0;
  uint64_t hash_sum = 0;
  uint64_t hash_xor = 0;

  void Add(const Sample& sample) {
    const std::string text = sample.series.ToString() + "|" +
                             std::to_string(sample.timestamp_ms / 1000) + "|" +
                             std::to_string(sample.value);
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 0x100000001b3ULL;
    }
    ++count;
    value_sum += sample.value;
    hash_sum += hash;
    hash_xor ^= hash;
  }

  bool operator==(const W1Digest&) const = default;
};

// The digest every correct W1 run produces.
inline constexpr W1Digest kW1ExpectedDigest{5'700'000, 290'693'500'000,
                                            0xd955f17b56886281ULL,
                                            0x9978adc1eb667477ULL};

// The number of samples W1-large emits.
inline constexpr uint64_t kW1LargeExpectedSamples = 17'000'000;

}  // namespace converge::bench

#endif  // CONVERGE_BENCH_W1_WORKLOAD_H_

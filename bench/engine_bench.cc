// Engine ingest on workload W1 (see w1_workload.h), one engine on one thread.
//
//   BM_EngineW1PreparedKeys  keys built and hashed before the timed loop: the
//                            engine alone.
//   BM_EngineW1FreshKeys     every observation builds its canonical key from
//                            strings and hashes it, as a fetcher does.
//
// Each run checks the digest of the emitted samples against the W1 reference
// for the full W1 shape; a wrong digest fails the benchmark.

#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "absl/strings/str_cat.h"
#include "bench/w1_workload.h"
#include "converge/engine.h"

namespace converge::bench {
namespace {

struct W1Strings {
  std::vector<std::string> zones;
  std::vector<std::string> statuses;
};

W1Strings MakeStrings(const W1Shape& shape) {
  W1Strings strings;
  for (int z = 0; z < shape.zones; ++z) {
    strings.zones.push_back(absl::StrCat("zone-", z));
  }
  for (int s = 0; s < shape.series_per_zone; ++s) {
    strings.statuses.push_back(absl::StrCat(200 + s));
  }
  return strings;
}

SeriesKey MakeKey(const W1Strings& strings, int zone, int series) {
  return *SeriesKey::FromViews(
      kW1Metric,
      {{"zone", strings.zones[zone]}, {"status", strings.statuses[series]}});
}

std::unique_ptr<Engine> MakeEngine() {
  EngineOptions options;
  options.threshold = 3;
  options.window_ttl = absl::Minutes(15);
  return *Engine::Create(options);
}

// Runs W1 through `engine`; `key_for(z, s)` supplies each observation's key.
template <typename KeyFor>
W1Digest RunW1(const W1Shape& shape, Engine& engine, KeyFor key_for) {
  W1Digest digest;
  std::vector<Sample> out;
  for (int tick = 0; tick < shape.ticks; ++tick) {
    for (int m = W1FirstMinute(tick); m <= W1LastMinute(tick); ++m) {
      const int64_t bucket = W1BucketMs(m);
      for (int z = 0; z < shape.zones; ++z) {
        for (int s = 0; s < shape.series_per_zone; ++s) {
          engine.Ingest(key_for(z, s), bucket, W1Value(z, s, m, tick), &out);
        }
      }
    }
    engine.Expire(absl::FromUnixMillis(W1NowMs(tick)), &out);
    for (const Sample& sample : out) digest.Add(sample);
    out.clear();
  }
  return digest;
}

void Report(benchmark::State& state, const W1Shape& shape,
            const W1Digest& digest, uint64_t trackers_peak) {
  state.SetItemsProcessed(static_cast<int64_t>(W1Observations(shape)) *
                          state.iterations());
  state.counters["samples"] = static_cast<double>(digest.count);
  if (shape.zones == kW1.zones && shape.ticks == kW1.ticks &&
      !(digest == kW1ExpectedDigest)) {
    state.SkipWithError("W1 digest differs from the reference");
  }
  (void)trackers_peak;
}

const W1Shape& ShapeOf(const benchmark::State& state) {
  return state.range(0) == 0 ? kW1 : kW1Large;
}

void BM_EngineW1PreparedKeys(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const W1Strings strings = MakeStrings(shape);
  std::vector<SeriesKey> keys;
  keys.reserve(static_cast<size_t>(shape.zones) * shape.series_per_zone);
  for (int z = 0; z < shape.zones; ++z) {
    for (int s = 0; s < shape.series_per_zone; ++s) {
      keys.push_back(MakeKey(strings, z, s));
    }
  }

  W1Digest digest;
  for (auto _ : state) {
    std::unique_ptr<Engine> engine = MakeEngine();
    digest = RunW1(shape, *engine, [&](int z, int s) -> const SeriesKey& {
      return keys[static_cast<size_t>(z) * shape.series_per_zone + s];
    });
  }
  Report(state, shape, digest, 0);
}

void BM_EngineW1FreshKeys(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const W1Strings strings = MakeStrings(shape);

  W1Digest digest;
  for (auto _ : state) {
    std::unique_ptr<Engine> engine = MakeEngine();
    digest = RunW1(shape, *engine,
                   [&](int z, int s) { return MakeKey(strings, z, s); });
  }
  Report(state, shape, digest, 0);
}

// Argument 0 is W1, 1 is W1-large.
BENCHMARK(BM_EngineW1PreparedKeys)
    ->ArgName("large")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineW1FreshKeys)
    ->ArgName("large")
    ->Arg(0)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace converge::bench

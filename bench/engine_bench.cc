// Engine ingest on workload W1 (see w1_workload.h), one engine on one thread.
//
//   BM_EngineW1PreparedKeys   keys built and hashed before the timed loop,
//                             one Ingest() call per observation.
//   BM_EngineW1PreparedBatch  the same keys, each tick handed over through
//                             IngestBatch() in chunks: the engine alone.
//   BM_EngineW1PreparedHandles every series interned once with
//                             Engine::Prepare() at the start of the run, each
//                             tick handed over as PreparedObservation chunks:
//                             the tracker work without key lookups.
//   BM_EngineW1FreshKeys      every observation builds its canonical key from
//                             strings with SeriesKey::FromViews() and hashes
//                             it, as the fetchers do, then one Ingest() call.
//   BM_EngineW1FreshKeysBatch the same keys built into chunks of Observation
//                             and handed over through IngestBatch(), as a
//                             shard receives them.
//   BM_EngineW1StringKeys     every observation encodes its canonical key from
//                             strings into reused memory (SeriesEncoder) and
//                             hashes it; chunks go through IngestBatch():
//                             key building without allocations.
//
// Argument `large` selects W1 (0) or W1-large (1). Computing the digest of
// the emitted samples is excluded from the time; the label shows it. A run
// whose digest differs from the W1 reference fails. Counters:
//   samples            samples emitted (W1: 5.7 M, W1-large: 17 M)
//   peak_trackers      open trackers just before the busiest Expire()
//   bytes_per_tracker  growth of the process's peak resident memory (VmHWM)
//                      during the run, divided by peak_trackers. Memory that
//                      an earlier benchmark freed can be reused without
//                      growing VmHWM, so take this figure from a process that
//                      runs one benchmark alone.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/process_memory.h"
#include "bench/w1_workload.h"
#include "converge/engine.h"
#include "core/series_encoder.h"

namespace converge::bench {
namespace {

// Observations handed to IngestBatch() at once: large enough to amortise the
// call, small enough to stay in the L2 cache.
constexpr size_t kChunk = 4096;

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

// Labels in the order W1 gives them (zone first); the key sorts them.
SeriesKey MakeKey(const W1Strings& strings, int zone, int series) {
  return *SeriesKey::FromViews(
      kW1Metric,
      {{"zone", strings.zones[zone]}, {"status", strings.statuses[series]}});
}

std::vector<SeriesKey> MakeKeys(const W1Shape& shape) {
  const W1Strings strings = MakeStrings(shape);
  std::vector<SeriesKey> keys;
  keys.reserve(static_cast<size_t>(shape.zones) * shape.series_per_zone);
  for (int z = 0; z < shape.zones; ++z) {
    for (int s = 0; s < shape.series_per_zone; ++s) {
      keys.push_back(MakeKey(strings, z, s));
    }
  }
  return keys;
}

std::unique_ptr<Engine> MakeEngine() {
  EngineOptions options;
  options.threshold = 3;
  options.window_ttl = absl::Minutes(15);
  return *Engine::Create(options);
}

const W1Shape& ShapeOf(const benchmark::State& state) {
  return state.range(0) == 0 ? kW1 : kW1Large;
}

struct W1Result {
  W1Digest digest;
  uint64_t peak_trackers = 0;
  uint64_t peak_rss_growth = 0;  // bytes
};

void Report(benchmark::State& state, const W1Shape& shape,
            const W1Result& result);

// Runs W1 through `engine`. `ingest_tick(engine, tick, &out)` ingests every
// observation of the tick; the digest of each tick's samples is computed
// with the timer paused.
template <typename IngestTick>
W1Result RunW1(benchmark::State& state, const W1Shape& shape, Engine& engine,
               IngestTick& ingest_tick) {
  W1Result result;
  std::vector<Sample> out;
  for (int tick = 0; tick < shape.ticks; ++tick) {
    ingest_tick(engine, tick, &out);
    result.peak_trackers =
        std::max(result.peak_trackers, engine.stats().trackers);
    engine.Expire(absl::FromUnixMillis(W1NowMs(tick)), &out);

    state.PauseTiming();
    for (const Sample& sample : out) result.digest.Add(sample);
    state.ResumeTiming();
    out.clear();
  }
  return result;
}

// Runs every iteration of W1 in a fresh engine and records the growth of the
// peak resident set during the last one.
template <typename IngestTick>
void RunAndReport(benchmark::State& state, IngestTick ingest_tick) {
  const W1Shape& shape = ShapeOf(state);
  W1Result result;
  for (auto _ : state) {
    state.PauseTiming();
    ResetPeakRss();
    const uint64_t rss_before = ReadProcStatusBytes("VmRSS");
    std::unique_ptr<Engine> engine = MakeEngine();
    state.ResumeTiming();

    result = RunW1(state, shape, *engine, ingest_tick);

    state.PauseTiming();
    const uint64_t peak = ReadProcStatusBytes("VmHWM");
    result.peak_rss_growth = peak > rss_before ? peak - rss_before : 0;
    engine.reset();
    state.ResumeTiming();
  }
  Report(state, shape, result);
}

void Report(benchmark::State& state, const W1Shape& shape,
            const W1Result& result) {
  state.SetItemsProcessed(static_cast<int64_t>(W1Observations(shape)) *
                          state.iterations());
  state.counters["samples"] = static_cast<double>(result.digest.count);
  state.counters["peak_trackers"] = static_cast<double>(result.peak_trackers);
  if (result.peak_trackers > 0) {
    state.counters["bytes_per_tracker"] =
        static_cast<double>(result.peak_rss_growth) /
        static_cast<double>(result.peak_trackers);
  }
  state.SetLabel(
      absl::StrFormat("digest count=%d sum=%d hash_sum=%016x hash_xor=%016x",
                      result.digest.count, result.digest.value_sum,
                      result.digest.hash_sum, result.digest.hash_xor));
  if (shape.zones == kW1.zones && shape.ticks == kW1.ticks &&
      !(result.digest == kW1ExpectedDigest)) {
    state.SkipWithError("W1 digest differs from the reference");
  }
  if (shape.zones == kW1Large.zones && shape.ticks == kW1Large.ticks &&
      result.digest.count != kW1LargeExpectedSamples) {
    state.SkipWithError("W1-large sample count differs from the reference");
  }
}

void BM_EngineW1PreparedKeys(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const std::vector<SeriesKey> keys = MakeKeys(shape);
  auto ingest_tick = [&](Engine& engine, int tick, std::vector<Sample>* out) {
    ForEachW1Observation(
        shape, tick, 0, shape.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          engine.Ingest(
              keys[static_cast<size_t>(z) * shape.series_per_zone + s],
              bucket_ms, value, out);
        });
  };
  RunAndReport(state, ingest_tick);
}

void BM_EngineW1PreparedBatch(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const std::vector<SeriesKey> keys = MakeKeys(shape);
  std::vector<ObservationView> chunk;
  chunk.reserve(kChunk);
  auto ingest_tick = [&](Engine& engine, int tick, std::vector<Sample>* out) {
    ForEachW1Observation(
        shape, tick, 0, shape.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          chunk.push_back(ObservationView{
              SeriesKeyView::Of(
                  keys[static_cast<size_t>(z) * shape.series_per_zone + s]),
              bucket_ms, value});
          if (chunk.size() == kChunk) {
            engine.IngestBatch(chunk, out);
            chunk.clear();
          }
        });
    engine.IngestBatch(chunk, out);
    chunk.clear();
  };
  RunAndReport(state, ingest_tick);
}

void BM_EngineW1PreparedHandles(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const std::vector<SeriesKey> keys = MakeKeys(shape);
  std::vector<SeriesHandle> handles;
  std::vector<PreparedObservation> chunk;
  chunk.reserve(kChunk);
  auto ingest_tick = [&](Engine& engine, int tick, std::vector<Sample>* out) {
    // Interning is part of the run: each run starts a fresh engine.
    if (tick == 0) {
      handles.clear();
      for (const SeriesKey& key : keys) handles.push_back(engine.Prepare(key));
    }
    ForEachW1Observation(
        shape, tick, 0, shape.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          chunk.push_back(PreparedObservation{
              handles[static_cast<size_t>(z) * shape.series_per_zone + s],
              bucket_ms, value});
          if (chunk.size() == kChunk) {
            engine.IngestBatch(chunk, out);
            chunk.clear();
          }
        });
    engine.IngestBatch(chunk, out);
    chunk.clear();
  };
  RunAndReport(state, ingest_tick);
}

void BM_EngineW1FreshKeys(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const W1Strings strings = MakeStrings(shape);
  auto ingest_tick = [&](Engine& engine, int tick, std::vector<Sample>* out) {
    ForEachW1Observation(shape, tick, 0, shape.zones,
                         [&](int z, int s, int64_t bucket_ms, uint64_t value) {
                           engine.Ingest(MakeKey(strings, z, s), bucket_ms,
                                         value, out);
                         });
  };
  RunAndReport(state, ingest_tick);
}

void BM_EngineW1FreshKeysBatch(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const W1Strings strings = MakeStrings(shape);
  std::vector<Observation> chunk;
  chunk.reserve(kChunk);
  auto ingest_tick = [&](Engine& engine, int tick, std::vector<Sample>* out) {
    ForEachW1Observation(shape, tick, 0, shape.zones,
                         [&](int z, int s, int64_t bucket_ms, uint64_t value) {
                           chunk.push_back(Observation{MakeKey(strings, z, s),
                                                       bucket_ms, value});
                           if (chunk.size() == kChunk) {
                             engine.IngestBatch(chunk, out);
                             chunk.clear();
                           }
                         });
    engine.IngestBatch(chunk, out);
    chunk.clear();
  };
  RunAndReport(state, ingest_tick);
}

void BM_EngineW1StringKeys(benchmark::State& state) {
  const W1Shape& shape = ShapeOf(state);
  const W1Strings strings = MakeStrings(shape);
  SeriesEncoder encoder;
  std::vector<ObservationView> chunk;
  chunk.reserve(kChunk);
  auto flush_chunk = [&](Engine& engine, std::vector<Sample>* out) {
    engine.IngestBatch(chunk, out);
    chunk.clear();
    encoder.Clear();
  };
  auto ingest_tick = [&](Engine& engine, int tick, std::vector<Sample>* out) {
    ForEachW1Observation(
        shape, tick, 0, shape.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          const SeriesEncoder::LabelView labels[] = {
              {"zone", strings.zones[z]}, {"status", strings.statuses[s]}};
          chunk.push_back(ObservationView{*encoder.Encode(kW1Metric, labels),
                                          bucket_ms, value});
          if (chunk.size() == kChunk) flush_chunk(engine, out);
        });
    flush_chunk(engine, out);
  };
  RunAndReport(state, ingest_tick);
}

// Argument `large`: 0 is W1, 1 is W1-large. One iteration is one full run.
BENCHMARK(BM_EngineW1PreparedKeys)
    ->ArgName("large")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineW1PreparedBatch)
    ->ArgName("large")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineW1PreparedHandles)
    ->ArgName("large")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineW1StringKeys)
    ->ArgName("large")
    ->Arg(0)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineW1FreshKeys)
    ->ArgName("large")
    ->Arg(0)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineW1FreshKeysBatch)
    ->ArgName("large")
    ->Arg(0)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace converge::bench

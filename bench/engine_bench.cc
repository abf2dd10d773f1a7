// Engine ingest benchmarks: one shard, observations built and hashed before
// the timed loop, so the figure is the engine alone.

#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "absl/strings/str_cat.h"
#include "converge/engine.h"

namespace converge {
namespace {

constexpr int64_t kStartMs = 1'780'272'000'000;  // 2026-06-01T00:00:00Z
constexpr int64_t kMinuteMs = 60'000;

// Ticks every 30 s over `zones` x `series` series, refetching the last ten
// minute buckets with values that grow for four minutes and then settle.
void BM_EngineIngestSettling(benchmark::State& state) {
  const int zones = static_cast<int>(state.range(0));
  const int series_per_zone = 100;
  const int ticks = 40;

  std::vector<SeriesKey> keys;
  for (int z = 0; z < zones; ++z) {
    for (int s = 0; s < series_per_zone; ++s) {
      keys.push_back(*SeriesKey::Make(
          "cloudflare_zone_requests_status",
          {{"zone", absl::StrCat("zone-", z)},
           {"status", absl::StrCat(200 + s)}}));
    }
  }

  uint64_t observations = 0;
  for (auto _ : state) {
    auto engine = *Engine::Create(EngineOptions{});
    std::vector<Sample> out;
    for (int tick = 0; tick < ticks; ++tick) {
      const int minute = tick / 2;
      for (int m = std::max(0, minute - 9); m <= minute; ++m) {
        const uint64_t age = tick - 2 * m;
        for (size_t i = 0; i < keys.size(); ++i) {
          const uint64_t final_value = 1000 + i % 100000;
          engine->Ingest(Observation{keys[i], kStartMs + m * kMinuteMs,
                                     final_value * std::min<uint64_t>(age, 4) / 4},
                         &out);
          ++observations;
        }
      }
      engine->Expire(absl::FromUnixMillis(kStartMs + tick * 30'000), &out);
      out.clear();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(observations));
}
BENCHMARK(BM_EngineIngestSettling)->Arg(100)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace converge

// Parsing and encoding, one thread.
//
//   BM_ParseRecordedFetch  ParseRecordedFetch() on a generated recorded fetch
//                          of W1 series (one JSON document, range(0)
//                          observations). Reports bytes/s and observations/s;
//                          key building and hashing are included.
//   BM_ParseCloudflareResponse
//                          ParseGraphqlResponse() and FlattenZones() on a
//                          generated httpRequestsAdaptiveGroups response of
//                          range(0) zones x 10 minutes x 99 statuses, as one
//                          Cloudflare fetch parses it. Reports bytes/s and
//                          observations/s; key building and hashing are
//                          included. FlattenZones() spreads zones over oneTBB
//                          workers, so this one may use more than one core.
//   BM_EncodeRemoteWrite   EncodeWriteRequest() and SnappyCompress() of one
//                          batch of range(0) W1 samples, 2 timestamps per
//                          series, grouped by series as the shards send them.
//                          Reports samples/s and the protobuf and compressed
//                          bytes per sample.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/w1_workload.h"
#include "converge/sinks.h"
#include "converge/sources.h"
#include "sources/cloudflare_metrics.h"
#include "sources/cloudflare_observations.h"
#include "sources/cloudflare_response.h"

namespace converge::bench {
namespace {

std::string Rfc3339(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

// A recorded fetch of the live lane at W1 tick 40: ten buckets of the first
// `observations / 1000` zones, in W1 order.
// REQUIRES: `observations` is a multiple of 1000.
std::string MakeRecordedFetch(int observations) {
  constexpr int kTick = 40;
  const int buckets = W1LastMinute(kTick) - W1FirstMinute(kTick) + 1;
  const int zones = observations / (buckets * kW1.series_per_zone);
  std::string json = absl::StrCat("{\n  \"seq\": 1,\n  \"start\": \"",
                                  Rfc3339(W1BucketMs(W1FirstMinute(kTick))),
                                  "\",\n  \"end\": \"", Rfc3339(W1NowMs(kTick)),
                                  "\",\n  \"observations\": [");
  bool first = true;
  ForEachW1Observation(kW1, kTick, 0, zones,
                       [&](int z, int s, int64_t bucket_ms, uint64_t value) {
                         absl::StrAppend(
                             &json, first ? "\n" : ",\n", "    {\"name\": \"",
                             kW1Metric, "\", \"labels\": {\"zone\": \"zone-", z,
                             "\", \"status\": \"", 200 + s,
                             "\"}, \"value\": ", value, ", \"bucket\": \"",
                             Rfc3339(bucket_ms), "\"}");
                         first = false;
                       });
  absl::StrAppend(&json, "\n  ]\n}\n");
  return json;
}

void BM_ParseRecordedFetch(benchmark::State& state) {
  const int observations = static_cast<int>(state.range(0));
  const std::string json = MakeRecordedFetch(observations);

  for (auto _ : state) {
    absl::StatusOr<RecordedFetch> fetch = ParseRecordedFetch(json);
    if (!fetch.ok()) {
      state.SkipWithError(fetch.status().ToString().c_str());
      return;
    }
    if (fetch->observations.size() != static_cast<size_t>(observations)) {
      state.SkipWithError("parsed a different number of observations");
      return;
    }
    benchmark::DoNotOptimize(fetch->observations.data());
  }

  state.SetBytesProcessed(static_cast<int64_t>(json.size()) *
                          state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(observations) *
                          state.iterations());
  state.counters["document_bytes"] = static_cast<double>(json.size());
}

// An httpRequestsAdaptiveGroups response of `zones` zones, each with 10
// minutes x 99 statuses (200 to 298), counts from the W1 value formula.
std::string MakeAdaptiveResponse(int zones) {
  constexpr int kTick = 40;
  std::string json = R"({"data":{"viewer":{"zones":[)";
  for (int z = 0; z < zones; ++z) {
    absl::StrAppend(&json, z == 0 ? "" : ",", R"({"zoneTag":"zone-tag-)", z,
                    R"(","httpRequestsAdaptiveGroups":[)");
    bool first = true;
    for (int m = W1FirstMinute(kTick); m <= W1LastMinute(kTick); ++m) {
      for (int s = 0; s < 99; ++s) {
        absl::StrAppend(&json, first ? "" : ",", R"({"count":)",
                        W1Value(z, s, m, kTick),
                        R"(,"dimensions":{"datetimeMinute":")",
                        Rfc3339(W1BucketMs(m)), R"(","edgeResponseStatus":)",
                        200 + s, "}}");
        first = false;
      }
    }
    json += "]}";
  }
  json += R"(]}},"errors":null})";
  return json;
}

void BM_ParseCloudflareResponse(benchmark::State& state) {
  const int zones = static_cast<int>(state.range(0));
  const std::string json = MakeAdaptiveResponse(zones);
  const cloudflare::MetricSet metrics = cloudflare::MetricSet::All();

  size_t observations = 0;
  for (auto _ : state) {
    absl::StatusOr<cloudflare::GraphqlResponse> response =
        cloudflare::ParseGraphqlResponse(json,
                                         cloudflare::Dataset::kHttpAdaptive);
    if (!response.ok() || response->zones.size() != static_cast<size_t>(zones)) {
      state.SkipWithError("the generated response did not parse");
      return;
    }
    std::vector<cloudflare::ZoneInput> inputs;
    for (const cloudflare::ZoneRows& rows : response->zones) {
      inputs.push_back(cloudflare::ZoneInput{&rows, rows.zone_tag, {}});
    }
    const std::vector<cloudflare::ZoneOutput> outputs = cloudflare::FlattenZones(
        inputs, cloudflare::Dataset::kHttpAdaptive, metrics);
    observations = 0;
    for (const cloudflare::ZoneOutput& output : outputs) {
      observations += output.observations.size();
    }
    benchmark::DoNotOptimize(outputs.data());
  }

  state.SetBytesProcessed(static_cast<int64_t>(json.size()) *
                          state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(observations) *
                          state.iterations());
  state.counters["document_bytes"] = static_cast<double>(json.size());
  state.counters["observations"] = static_cast<double>(observations);
}

// `samples` W1 samples: two consecutive buckets of each series, grouped by
// series.
std::vector<Sample> MakeSampleBatch(int samples) {
  std::vector<Sample> batch;
  batch.reserve(static_cast<size_t>(samples));
  constexpr int kMinute = 30;
  for (int i = 0; static_cast<int>(batch.size()) < samples; ++i) {
    const int z = i / kW1.series_per_zone;
    const int s = i % kW1.series_per_zone;
    const SeriesKey key =
        *SeriesKey::FromViews(kW1Metric, {{"zone", absl::StrCat("zone-", z)},
                                          {"status", absl::StrCat(200 + s)}});
    for (int m = kMinute;
         m < kMinute + 2 && static_cast<int>(batch.size()) < samples; ++m) {
      batch.push_back(Sample{key, W1BucketMs(m), W1Value(z, s, m, 2 * m + 4),
                             SampleCause::kStable});
    }
  }
  return batch;
}

void BM_EncodeRemoteWrite(benchmark::State& state) {
  const std::vector<Sample> batch =
      MakeSampleBatch(static_cast<int>(state.range(0)));

  size_t raw_bytes = 0;
  size_t compressed_bytes = 0;
  for (auto _ : state) {
    const std::string raw = EncodeWriteRequest(batch);
    const std::string compressed = SnappyCompress(raw);
    raw_bytes = raw.size();
    compressed_bytes = compressed.size();
    benchmark::DoNotOptimize(compressed.data());
  }

  const auto samples = static_cast<double>(batch.size());
  state.SetItemsProcessed(static_cast<int64_t>(batch.size()) *
                          state.iterations());
  state.counters["protobuf_bytes_per_sample"] =
      static_cast<double>(raw_bytes) / samples;
  state.counters["snappy_bytes_per_sample"] =
      static_cast<double>(compressed_bytes) / samples;
}

BENCHMARK(BM_ParseRecordedFetch)->Arg(100'000)->Unit(benchmark::kMillisecond);
// One GraphQL query covers at most ten zones.
BENCHMARK(BM_ParseCloudflareResponse)->Arg(10)->Unit(benchmark::kMillisecond);
// 5,000 samples is the pipeline's default batch_max_samples.
BENCHMARK(BM_EncodeRemoteWrite)->Arg(5'000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace converge::bench

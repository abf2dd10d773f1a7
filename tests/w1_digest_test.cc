// Workload W1 scaled down to 10 zones x 10 series x 120 ticks must produce
// the reference digest through every ingest entry point of the engine.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/w1_workload.h"
#include "converge/engine.h"
#include "core/series_encoder.h"

namespace converge::bench {
namespace {

constexpr W1Shape kSmallW1{10, 10, 120};
constexpr W1Digest kSmallW1Digest{5'700, 290'356'000, 0xb40d28c78949da82ULL,
                                  0xb8a3c76f4770c8f8ULL};

class W1DigestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions options;
    options.threshold = 3;
    options.window_ttl = absl::Minutes(15);
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);

    for (int z = 0; z < kSmallW1.zones; ++z) {
      zones_.push_back(absl::StrCat("zone-", z));
    }
    for (int s = 0; s < kSmallW1.series_per_zone; ++s) {
      statuses_.push_back(absl::StrCat(200 + s));
    }
    for (int z = 0; z < kSmallW1.zones; ++z) {
      for (int s = 0; s < kSmallW1.series_per_zone; ++s) {
        keys_.push_back(*SeriesKey::FromViews(
            kW1Metric, {{"zone", zones_[z]}, {"status", statuses_[s]}}));
      }
    }
  }

  const SeriesKey& KeyOf(int zone, int series) const {
    return keys_[static_cast<size_t>(zone) * kSmallW1.series_per_zone + series];
  }

  // Runs every tick: `ingest_tick(tick, &out)` ingests the tick's
  // observations, then the engine expires at the tick's `now`.
  W1Digest Run(
      const std::function<void(int, std::vector<Sample>*)>& ingest_tick) {
    W1Digest digest;
    std::vector<Sample> out;
    for (int tick = 0; tick < kSmallW1.ticks; ++tick) {
      ingest_tick(tick, &out);
      engine_->Expire(absl::FromUnixMillis(W1NowMs(tick)), &out);
      for (const Sample& sample : out) digest.Add(sample);
      out.clear();
    }
    return digest;
  }

  static void ExpectReferenceDigest(const W1Digest& digest) {
    EXPECT_EQ(digest.count, kSmallW1Digest.count);
    EXPECT_EQ(digest.value_sum, kSmallW1Digest.value_sum);
    EXPECT_EQ(digest.hash_sum, kSmallW1Digest.hash_sum)
        << std::hex << digest.hash_sum;
    EXPECT_EQ(digest.hash_xor, kSmallW1Digest.hash_xor)
        << std::hex << digest.hash_xor;
  }

  std::unique_ptr<Engine> engine_;
  std::vector<std::string> zones_;
  std::vector<std::string> statuses_;
  std::vector<SeriesKey> keys_;
};

TEST_F(W1DigestTest, IngestWithKeys) {
  ExpectReferenceDigest(Run([&](int tick, std::vector<Sample>* out) {
    ForEachW1Observation(kSmallW1, tick, 0, kSmallW1.zones,
                         [&](int z, int s, int64_t bucket_ms, uint64_t value) {
                           engine_->Ingest(KeyOf(z, s), bucket_ms, value, out);
                         });
  }));
  EXPECT_EQ(engine_->stats().observations, W1Observations(kSmallW1));
  EXPECT_EQ(engine_->stats().late_dropped, 0u);
}

TEST_F(W1DigestTest, IngestObservations) {
  ExpectReferenceDigest(Run([&](int tick, std::vector<Sample>* out) {
    ForEachW1Observation(
        kSmallW1, tick, 0, kSmallW1.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          engine_->Ingest(Observation{KeyOf(z, s), bucket_ms, value}, out);
        });
  }));
}

TEST_F(W1DigestTest, IngestBatchOfObservations) {
  ExpectReferenceDigest(Run([&](int tick, std::vector<Sample>* out) {
    std::vector<Observation> batch;
    ForEachW1Observation(
        kSmallW1, tick, 0, kSmallW1.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          batch.push_back(Observation{KeyOf(z, s), bucket_ms, value});
        });
    engine_->IngestBatch(batch, out);
  }));
}

TEST_F(W1DigestTest, IngestBatchOfViews) {
  ExpectReferenceDigest(Run([&](int tick, std::vector<Sample>* out) {
    std::vector<ObservationView> batch;
    ForEachW1Observation(
        kSmallW1, tick, 0, kSmallW1.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          batch.push_back(ObservationView{SeriesKeyView::Of(KeyOf(z, s)),
                                          bucket_ms, value});
        });
    engine_->IngestBatch(batch, out);
  }));
}

TEST_F(W1DigestTest, IngestEncodedStringKeys) {
  SeriesEncoder encoder;
  ExpectReferenceDigest(Run([&](int tick, std::vector<Sample>* out) {
    std::vector<ObservationView> batch;
    ForEachW1Observation(
        kSmallW1, tick, 0, kSmallW1.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          const SeriesEncoder::LabelView labels[] = {{"zone", zones_[z]},
                                                     {"status", statuses_[s]}};
          absl::StatusOr<SeriesKeyView> key = encoder.Encode(kW1Metric, labels);
          ASSERT_TRUE(key.ok()) << key.status();
          batch.push_back(ObservationView{*key, bucket_ms, value});
        });
    engine_->IngestBatch(batch, out);
    encoder.Clear();
  }));
}

TEST_F(W1DigestTest, IngestPreparedHandles) {
  std::vector<SeriesHandle> handles;
  for (const SeriesKey& key : keys_) handles.push_back(engine_->Prepare(key));

  ExpectReferenceDigest(Run([&](int tick, std::vector<Sample>* out) {
    std::vector<PreparedObservation> batch;
    ForEachW1Observation(
        kSmallW1, tick, 0, kSmallW1.zones,
        [&](int z, int s, int64_t bucket_ms, uint64_t value) {
          batch.push_back(PreparedObservation{
              handles[static_cast<size_t>(z) * kSmallW1.series_per_zone + s],
              bucket_ms, value});
        });
    engine_->IngestBatch(batch, out);
  }));

  for (SeriesHandle handle : handles) engine_->Release(handle);
}

}  // namespace
}  // namespace converge::bench

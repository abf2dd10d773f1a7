// Delivery through the real remote write sink and the sink thread against a
// local fake receiver that misbehaves on purpose: 503 for a while, 429 with
// Retry-After, refused connections, a 400 for one bad sample, and replies
// that never come. Each test checks what was delivered, what was counted,
// and that later batches still went out.

#include <curl/curl.h>

#include <chrono>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "converge/sinks.h"
#include "pipeline/sink_worker.h"
#include "tests/testing/fake_receiver.h"

namespace converge {
namespace {

using harness::FakeReceiver;
using harness::ReceivedRequest;
using harness::ReceivedSample;
using harness::ReceiverReply;

constexpr int64_t kBucketMs = 1'782'327'600'000;  // 2026-06-24T19:00:00Z

Sample MakeSample(int zone, int minute, uint64_t value) {
  return Sample{
      *SeriesKey::Make("cloudflare_zone_requests_total",
                       {{"zone", absl::StrCat("zone-", zone)}}),
      kBucketMs + minute * 60'000, value, SampleCause::kStable};
}

// (zone label, timestamp, value) of received samples, duplicates removed:
// a push that timed out may still have been stored, so delivery is
// at-least-once.
using Point = std::tuple<std::string, int64_t, double>;

std::set<Point> Points(const std::vector<ReceivedSample>& samples) {
  std::set<Point> points;
  for (const ReceivedSample& sample : samples) {
    points.emplace(sample.labels.at("zone"), sample.timestamp_ms, sample.value);
  }
  return points;
}

std::set<Point> Points(const std::vector<Sample>& samples) {
  std::set<Point> points;
  for (const Sample& sample : samples) {
    points.emplace(std::string(sample.series.labels()[0].second),
                   sample.timestamp_ms, static_cast<double>(sample.value));
  }
  return points;
}

// Waits until `condition` holds, failing the test after 30 s.
template <typename Condition>
bool WaitFor(Condition condition) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class DeliveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override {
    // Three batches of ten samples each.
    for (int i = 0; i < 30; ++i) samples_.push_back(MakeSample(i % 5, i, 100 + i));
  }

  // Runs a sink worker over `samples_` in batches of ten, with `during`
  // running on the test thread while it delivers.
  template <typename During>
  SinkCounters Deliver(During during,
                       absl::Duration timeout = absl::Seconds(5),
                       absl::Duration deadline = absl::InfiniteDuration()) {
    absl::StatusOr<std::unique_ptr<Sink>> sink =
        MakeRemoteWriteSink({.url = receiver_.url(), .timeout = timeout});
    EXPECT_TRUE(sink.ok()) << sink.status();
    EXPECT_TRUE((*sink)->Open().ok());

    SinkWorkerOptions options;
    options.batch_max_samples = 10;
    options.flush_interval = absl::Milliseconds(5);
    options.retry_min = absl::Milliseconds(10);
    options.retry_max = absl::Milliseconds(50);
    SinkWorker worker(options, sink->get(), 1024);
    if (deadline != absl::InfiniteDuration()) {
      worker.SetDeadline(absl::Now() + deadline);
    }
    std::thread thread([&] { worker.Run(); });

    BoundedQueue<Sample>::ProducerToken token =
        worker.queue().MakeProducerToken();
    std::vector<Sample> copy = samples_;
    worker.queue().PushBulk(token, copy.data(), copy.size());
    worker.Finish(copy.size());
    during();
    thread.join();
    EXPECT_TRUE((*sink)->Close().ok());
    return worker.counters();
  }

  FakeReceiver receiver_;
  std::vector<Sample> samples_;
};

TEST_F(DeliveryTest, ServiceUnavailableThenAccepted) {
  int requests = 0;
  receiver_.SetHandler([&](const ReceivedRequest&) {
    return ++requests <= 3 ? ReceiverReply{503, "overloaded"} : ReceiverReply{204};
  });
  const SinkCounters counters = Deliver([] {});
  EXPECT_EQ(counters.retries, 3u);
  EXPECT_EQ(counters.delivered, 30u);
  EXPECT_EQ(counters.undelivered, 0u);
  EXPECT_EQ(Points(receiver_.accepted()), Points(samples_));
}

TEST_F(DeliveryTest, TooManyRequestsWaitsForRetryAfter) {
  int requests = 0;
  receiver_.SetHandler([&](const ReceivedRequest&) {
    return ++requests == 1 ? ReceiverReply{429, "slow down", "1"}
                           : ReceiverReply{204};
  });
  const SinkCounters counters = Deliver([] {});
  EXPECT_EQ(counters.retries, 1u);
  // Retry-After: 1 requests a second, but retry_max alone would allow 50 ms.
  EXPECT_GE(counters.retry_wait, absl::Milliseconds(990));
  EXPECT_EQ(counters.delivered, 30u);
  EXPECT_EQ(Points(receiver_.accepted()), Points(samples_));
}

TEST_F(DeliveryTest, RefusedConnectionThenAccepted) {
  receiver_.Stop();
  const SinkCounters counters = Deliver([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    receiver_.Start();
  });
  EXPECT_GT(counters.retries, 0u);
  EXPECT_EQ(counters.delivered, 30u);
  EXPECT_EQ(Points(receiver_.accepted()), Points(samples_));
}

TEST_F(DeliveryTest, BadSampleRejectedGoodOnesLand) {
  samples_[13].value = 666;  // in the second batch
  receiver_.SetHandler([](const ReceivedRequest& request) {
    for (const ReceivedSample& sample : request.samples) {
      if (sample.value == 666) {
        return ReceiverReply{400, "cannot parse sample with value 666"};
      }
    }
    return ReceiverReply{204};
  });
  const SinkCounters counters = Deliver([] {});
  EXPECT_EQ(counters.delivered, 29u);
  EXPECT_EQ(counters.rejected, 1u);
  EXPECT_EQ(counters.rejected_by_http_status.at(400), 1u);
  std::vector<Sample> good = samples_;
  good.erase(good.begin() + 13);
  EXPECT_EQ(Points(receiver_.accepted()), Points(good));
  // The third batch went out after the split of the second.
  EXPECT_EQ(Points(receiver_.accepted()).count(
                Point{"zone-4", kBucketMs + 29 * 60'000, 129}),
            1u);
}

TEST_F(DeliveryTest, SilentReceiverTimesOutThenRecovers) {
  receiver_.HoldReplies();
  const SinkCounters counters = Deliver(
      [&] {
        // Let at least one push time out and be retried, then reply.
        ASSERT_TRUE(WaitFor([&] { return receiver_.requests().size() >= 2; }));
        receiver_.Release();
      },
      absl::Milliseconds(200));
  EXPECT_GT(counters.retries, 0u);
  EXPECT_EQ(counters.delivered, 30u);
  EXPECT_EQ(Points(receiver_.accepted()), Points(samples_));
}

TEST_F(DeliveryTest, SilentReceiverAtDeadlineCountsUndelivered) {
  receiver_.HoldReplies();
  const SinkCounters counters =
      Deliver([] {}, absl::Milliseconds(100), absl::Milliseconds(500));
  receiver_.Release();
  EXPECT_EQ(counters.delivered, 0u);
  EXPECT_EQ(counters.undelivered, 30u);
}

}  // namespace
}  // namespace converge

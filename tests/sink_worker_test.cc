// The batching sink thread on its own: batches, retries, rejections split to
// the bad sample, corrections coalesced, the shutdown deadline, and a stress
// test of the Finish hand-off under a watchdog.

#include "pipeline/sink_worker.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "core/absl_compat.h"

namespace converge {
namespace {

Sample MakeSample(int series, int64_t timestamp_ms, uint64_t value) {
  return Sample{*SeriesKey::Make("requests", {{"zone", absl::StrCat(series)}}),
                timestamp_ms, value, SampleCause::kStable};
}

absl::Status HttpError(int http_status, const std::string& message) {
  absl::Status status = http_status == 429 || http_status >= 500
                            ? absl::UnavailableError(message)
                            : absl::InvalidArgumentError(message);
  status.SetPayload(ToAbsl(kHttpStatusPayload),
                    absl::Cord(absl::StrCat(http_status)));
  return status;
}

// A sink whose replies a test scripts; records what it accepted.
class ScriptedSink : public Sink {
 public:
  std::string_view name() const override { return "scripted"; }

  absl::Status Push(std::span<const Sample> batch) override {
    std::lock_guard<std::mutex> lock(mutex);
    ++pushes;
    if (failures_left > 0) {
      --failures_left;
      return failure;
    }
    for (const Sample& sample : batch) {
      if (sample.value == poison_value) {
        return HttpError(400, "sample with value 666 is invalid");
      }
    }
    accepted.insert(accepted.end(), batch.begin(), batch.end());
    return absl::OkStatus();
  }

  std::mutex mutex;
  int pushes = 0;
  int failures_left = 0;
  absl::Status failure = absl::UnavailableError("down");
  uint64_t poison_value = 666;
  std::vector<Sample> accepted;
};

class SinkWorkerTest : public ::testing::Test {
 protected:
  SinkWorkerOptions Options() {
    SinkWorkerOptions options;
    options.batch_max_samples = 100;
    options.flush_interval = absl::Milliseconds(10);
    options.retry_min = absl::Milliseconds(1);
    options.retry_max = absl::Milliseconds(4);
    return options;
  }

  // Sends `samples` through a worker on its own thread and waits for it.
  SinkCounters RunWorker(const SinkWorkerOptions& options,
                         std::vector<Sample> samples,
                         absl::Duration deadline = absl::InfiniteDuration()) {
    SinkWorker worker(options, &sink_, 16);
    std::thread thread([&] { worker.Run(); });
    if (deadline != absl::InfiniteDuration()) {
      worker.SetDeadline(absl::Now() + deadline);
    }
    BoundedQueue<Sample>::ProducerToken token =
        worker.queue().MakeProducerToken();
    const uint64_t total = samples.size();
    worker.queue().PushBulk(token, samples.data(), samples.size());
    worker.Finish(total);
    thread.join();
    return worker.counters();
  }

  ScriptedSink sink_;
};

TEST_F(SinkWorkerTest, DeliversEverySampleInOrder) {
  std::vector<Sample> samples;
  for (int i = 0; i < 250; ++i) samples.push_back(MakeSample(i % 7, i, i));
  const SinkCounters counters = RunWorker(Options(), samples);
  EXPECT_EQ(counters.delivered, 250u);
  EXPECT_EQ(counters.rejected, 0u);
  ASSERT_EQ(sink_.accepted.size(), 250u);
  for (int i = 0; i < 250; ++i) {
    EXPECT_EQ(sink_.accepted[i].value, static_cast<uint64_t>(i));
  }
}

TEST_F(SinkWorkerTest, RetriesUnavailableUntilDelivered) {
  sink_.failures_left = 3;
  const SinkCounters counters = RunWorker(Options(), {MakeSample(1, 0, 5)});
  EXPECT_EQ(counters.retries, 3u);
  EXPECT_EQ(counters.delivered, 1u);
  EXPECT_EQ(sink_.pushes, 4);
}

TEST_F(SinkWorkerTest, HonoursRetryAfter) {
  sink_.failures_left = 1;
  sink_.failure = HttpError(429, "slow down");
  sink_.failure.SetPayload(ToAbsl(kRetryAfterPayload), absl::Cord("0.2"));
  const SinkCounters counters = RunWorker(Options(), {MakeSample(1, 0, 5)});
  EXPECT_EQ(counters.delivered, 1u);
  // The receiver asked for 200 ms; retry_max alone would allow only 4 ms.
  EXPECT_GE(counters.retry_wait, absl::Milliseconds(190));
}

TEST_F(SinkWorkerTest, SplitsRejectedBatchToBadSample) {
  std::vector<Sample> samples;
  for (int i = 0; i < 40; ++i) {
    samples.push_back(MakeSample(i, 0, i == 17 ? 666 : i));
  }
  SinkWorkerOptions options = Options();
  options.flush_interval = absl::Seconds(10);  // one batch of 40
  const SinkCounters counters = RunWorker(options, samples);
  EXPECT_EQ(counters.delivered, 39u);
  EXPECT_EQ(counters.rejected, 1u);
  EXPECT_EQ(counters.rejected_by_http_status.at(400), 1u);
  EXPECT_EQ(sink_.accepted.size(), 39u);
  // The good samples keep their order around the rejected one.
  for (size_t i = 1; i < sink_.accepted.size(); ++i) {
    EXPECT_LT(sink_.accepted[i - 1].value, sink_.accepted[i].value);
  }
}

TEST_F(SinkWorkerTest, RejectionWithoutHttpStatusCountsBatch) {
  sink_.failures_left = 1;
  sink_.failure = absl::FailedPreconditionError("disk is read-only");
  SinkWorkerOptions options = Options();
  options.flush_interval = absl::Seconds(10);
  const SinkCounters counters =
      RunWorker(options, {MakeSample(1, 0, 1), MakeSample(2, 0, 2)});
  EXPECT_EQ(counters.rejected, 2u);
  EXPECT_EQ(counters.rejected_by_http_status.at(0), 2u);
  EXPECT_EQ(sink_.pushes, 1);
}

TEST_F(SinkWorkerTest, CoalescesCorrectionWaitingInBatch) {
  SinkWorkerOptions options = Options();
  options.flush_interval = absl::Seconds(10);
  options.coalesce_corrections = true;
  const SinkCounters counters = RunWorker(
      options, {MakeSample(1, 60'000, 10), MakeSample(2, 60'000, 20),
                MakeSample(1, 60'000, 12), MakeSample(1, 120'000, 30)});
  EXPECT_EQ(counters.delivered, 3u);
  EXPECT_EQ(counters.superseded, 1u);
  ASSERT_EQ(sink_.accepted.size(), 3u);
  EXPECT_EQ(sink_.accepted[0].value, 12u);  // the correction, in place
  EXPECT_EQ(sink_.accepted[1].value, 20u);
  EXPECT_EQ(sink_.accepted[2].value, 30u);
}

TEST_F(SinkWorkerTest, KeepsEverySampleWithoutCoalescing) {
  SinkWorkerOptions options = Options();
  options.flush_interval = absl::Seconds(10);
  const SinkCounters counters = RunWorker(
      options, {MakeSample(1, 60'000, 10), MakeSample(1, 60'000, 12)});
  EXPECT_EQ(counters.delivered, 2u);
  EXPECT_EQ(counters.superseded, 0u);
}

TEST_F(SinkWorkerTest, DeadlineCountsUndelivered) {
  sink_.failures_left = 1'000'000;
  std::vector<Sample> samples;
  for (int i = 0; i < 30; ++i) samples.push_back(MakeSample(i, 0, i));
  const SinkCounters counters =
      RunWorker(Options(), samples, absl::Milliseconds(100));
  EXPECT_EQ(counters.delivered, 0u);
  EXPECT_EQ(counters.undelivered, 30u);
  EXPECT_GT(counters.retries, 0u);
}

// Many short runs with tiny queues and batches, producers on several
// threads, and failing pushes: every run must end, and every sample must be
// accounted for. A lost wakeup in the Finish hand-off hangs a round, which
// the watchdog turns into a failure.
TEST_F(SinkWorkerTest, FinishHandOffUnderWatchdog) {
  constexpr int kRounds = 300;
  std::atomic<int> rounds_done{0};
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    int last = -1;
    auto last_change = std::chrono::steady_clock::now();
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const int now = rounds_done.load();
      if (now != last) {
        last = now;
        last_change = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_change >
                 std::chrono::seconds(60)) {
        ADD_FAILURE() << "round " << now << " hung for 60 s";
        std::abort();
      }
    }
  });

  for (int round = 0; round < kRounds; ++round) {
    ScriptedSink sink;
    sink.failures_left = round % 4;
    SinkWorkerOptions options = Options();
    options.batch_max_samples = 1 + round % 5;
    options.flush_interval = absl::Microseconds(100 + round % 900);
    SinkWorker worker(options, &sink, 1 + round % 3);
    std::thread consumer([&] { worker.Run(); });

    const int producers = 1 + round % 3;
    const int per_producer = round % 20;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&, p] {
        BoundedQueue<Sample>::ProducerToken token =
            worker.queue().MakeProducerToken();
        for (int i = 0; i < per_producer; ++i) {
          worker.queue().Push(token, MakeSample(p, i, i));
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    worker.Finish(static_cast<uint64_t>(producers * per_producer));
    consumer.join();

    const SinkCounters& counters = worker.counters();
    ASSERT_EQ(counters.delivered, static_cast<uint64_t>(producers * per_producer))
        << "round " << round;
    rounds_done.store(round + 1);
  }
  finished.store(true);
  watchdog.join();
}

}  // namespace
}  // namespace converge

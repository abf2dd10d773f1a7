// Tests of the cloudflare source's state that fetcher threads share: the
// rate-limit pause, zone backoff and the known statuses. Built and run under
// ThreadSanitizer too.

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "sources/cloudflare_budget.h"
#include "sources/cloudflare_observations.h"

namespace converge::cloudflare {
namespace {

// A clock that moves only when the test advances it.
class ManualClock {
 public:
  absl::Time Now() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return now_;
  }
  void Advance(absl::Duration by) {
    std::lock_guard<std::mutex> lock(mutex_);
    now_ += by;
  }
  Clock AsClock() {
    return [this] { return Now(); };
  }

 private:
  mutable std::mutex mutex_;
  absl::Time now_ = absl::FromUnixSeconds(1'780'272'000);
};

TEST(RateLimitGateTest, PauseRunsUntilItsEnd) {
  ManualClock clock;
  RateLimitGate gate(clock.AsClock());
  EXPECT_EQ(gate.Remaining(), absl::ZeroDuration());
  EXPECT_TRUE(gate.Pause(absl::Seconds(30)));
  EXPECT_EQ(gate.Remaining(), absl::Seconds(30));
  clock.Advance(absl::Seconds(29));
  EXPECT_EQ(gate.Remaining(), absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(gate.Remaining(), absl::ZeroDuration());
}

TEST(RateLimitGateTest, PauseDuringPauseExtendsWithoutANewPause) {
  ManualClock clock;
  RateLimitGate gate(clock.AsClock());
  EXPECT_TRUE(gate.Pause(absl::Seconds(30)));
  EXPECT_FALSE(gate.Pause(absl::Seconds(60)));
  EXPECT_FALSE(gate.Pause(absl::Seconds(10)));  // never shortens
  EXPECT_EQ(gate.Remaining(), absl::Seconds(60));
  EXPECT_EQ(gate.pauses(), 1u);
  clock.Advance(absl::Seconds(61));
  EXPECT_TRUE(gate.Pause(absl::Seconds(5)));
  EXPECT_EQ(gate.pauses(), 2u);
}

TEST(RateLimitGateTest, ConcurrentPausesBeginOnePause) {
  ManualClock clock;
  RateLimitGate gate(clock.AsClock());
  std::atomic<int> began{0};
  std::vector<std::thread> threads;
  absl::Notification go;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      go.WaitForNotification();
      for (int j = 0; j < 100; ++j) {
        if (gate.Pause(absl::Seconds(10 + j))) began.fetch_add(1);
        (void)gate.Remaining();
      }
    });
  }
  go.Notify();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(began.load(), 1);
  EXPECT_EQ(gate.pauses(), 1u);
}

TEST(RateLimitGateTest, WaitEndsWhenThePauseEnds) {
  ManualClock clock;
  RateLimitGate gate(clock.AsClock());
  gate.Pause(absl::Minutes(5));
  std::atomic<bool> opened{false};
  std::thread waiter([&] {
    opened = gate.WaitUntilOpen(std::stop_token(), absl::Milliseconds(1));
  });
  clock.Advance(absl::Minutes(5));
  waiter.join();
  EXPECT_TRUE(opened.load());
}

TEST(RateLimitGateTest, WaitEndsOnStop) {
  ManualClock clock;
  RateLimitGate gate(clock.AsClock());
  gate.Pause(absl::Hours(1));
  std::stop_source stop;
  std::atomic<bool> opened{true};
  std::thread waiter(
      [&] { opened = gate.WaitUntilOpen(stop.get_token(), absl::Hours(1)); });
  stop.request_stop();
  waiter.join();
  EXPECT_FALSE(opened.load());
}

TEST(ZoneBackoffTest, BlocksUntilItsEndAndReportsOnce) {
  const absl::Time now = absl::FromUnixSeconds(1'780'272'000);
  ZoneBackoff backoff;
  EXPECT_FALSE(backoff.Blocked("z", Dataset::kHttp1m, now));
  EXPECT_TRUE(backoff.Block("z", Dataset::kHttp1m, now, now + absl::Hours(1)));
  EXPECT_FALSE(backoff.Block("z", Dataset::kHttp1m, now, now + absl::Hours(1)));
  EXPECT_TRUE(backoff.Blocked("z", Dataset::kHttp1m, now + absl::Minutes(59)));
  EXPECT_FALSE(backoff.Blocked("z", Dataset::kHttp1m, now + absl::Hours(1)));
  EXPECT_FALSE(backoff.Blocked("z", Dataset::kDns, now));
  EXPECT_FALSE(backoff.Blocked("other", Dataset::kHttp1m, now));
}

TEST(ZoneBackoffTest, ConcurrentBlocksReportOnce) {
  const absl::Time now = absl::FromUnixSeconds(1'780'272'000);
  ZoneBackoff backoff;
  std::atomic<int> reported{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 100; ++j) {
        if (backoff.Block("z", Dataset::kHttp1m, now, now + absl::Hours(1))) {
          reported.fetch_add(1);
        }
        (void)backoff.Blocked("z", Dataset::kHttp1m, now);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(reported.load(), 1);
}

TEST(KnownStatusesTest, ConcurrentRecordsAllArriveAtCommit) {
  KnownStatuses known;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&known, i] {
      for (int j = 0; j < 50; ++j) {
        known.Record("z", Dataset::kHttpAdaptive,
                     {std::to_string(200 + i * 50 + j)});
        (void)known.Committed("z", Dataset::kHttpAdaptive);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(known.Committed("z", Dataset::kHttpAdaptive).empty());
  known.Commit();
  EXPECT_EQ(known.Committed("z", Dataset::kHttpAdaptive).size(), 400u);
}

}  // namespace
}  // namespace converge::cloudflare

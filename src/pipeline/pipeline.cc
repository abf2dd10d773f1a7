#include "converge/pipeline.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/log_rate_limiter.h"
#include "pipeline/batch_pool.h"
#include "pipeline/bounded_queue.h"
#include "pipeline/messages.h"
#include "pipeline/shard_worker.h"
#include "pipeline/sink_worker.h"
#include "pipeline/tick_progress.h"

namespace converge {
namespace {

// Ticks the scheduler lets run ahead of the slowest shard. Two lets fetching
// of tick T+1 overlap the shards' work on tick T while bounding what a shard
// buffers for a tick that is not current yet to one tick.
constexpr uint64_t kTicksInFlight = 2;

// Observations a fetcher routes to one shard before handing them over as one
// message.
constexpr size_t kRouteBatch = 4096;

// Idle batches the pool keeps per fetcher.
constexpr size_t kIdleBatchesPerFetcher = 8;

// Converts the shard queue's bound from observations to messages: whole
// messages, plus one slot for a marker.
size_t ShardQueueMessages(size_t observations) {
  return (observations + kRouteBatch - 1) / kRouteBatch + 1;
}

// A unit of work for the fetchers. With `exit` set, the fetcher returns.
struct FetchWork {
  FetchTask task;
  bool exit = false;
};

struct TaskResult {
  FetchTask task;
  absl::Status status;
  uint64_t observations = 0;
};

}  // namespace

class Pipeline::Impl {
 public:
  Impl(const PipelineOptions& options, std::unique_ptr<Source> source,
       std::unique_ptr<Sink> sink)
      : options_(options),
        source_(std::move(source)),
        sink_(std::move(sink)),
        batch_pool_(kIdleBatchesPerFetcher *
                    static_cast<size_t>(options.fetchers)),
        progress_(options.shards),
        tasks_(1 << 20),
        results_(1 << 20) {
    // Every worker exists before Run() starts a thread and until the Impl is
    // destroyed, so RequestStop() may reach the sink worker at any time.
    SinkWorkerOptions sink_options;
    sink_options.batch_max_samples = options_.batch_max_samples;
    sink_options.batch_max_bytes = options_.batch_max_bytes;
    sink_options.flush_interval = options_.flush_interval;
    sink_options.retry_min = options_.retry_min;
    sink_options.retry_max = options_.retry_max;
    sink_options.coalesce_corrections = options_.coalesce_corrections;
    sink_worker_ = std::make_unique<SinkWorker>(sink_options, sink_.get(),
                                                options_.sink_queue_capacity);
    for (int i = 0; i < options_.shards; ++i) {
      // Pipeline::Create() validated the engine options the shards use.
      shards_.push_back(std::make_unique<ShardWorker>(
          i, options_.engine, ShardQueueMessages(options_.shard_queue_capacity),
          &sink_worker_->queue(), &progress_));
    }
  }

  absl::StatusOr<PipelineSummary> Run();
  void RequestStop();
  PipelineSnapshot Snapshot() const;

 private:
  // Per-fetcher state reused across tasks.
  struct FetcherContext {
    std::vector<BoundedQueue<ShardMessage>::ProducerToken> shard_tokens;
    std::optional<BoundedQueue<TaskResult>::ProducerToken> result_token;
    // Per shard: the positions being collected and the observations routed
    // for the current task.
    std::vector<std::vector<uint32_t>> positions;
    std::vector<uint64_t> routed_count;
  };

  void RunFetcher();
  void FetchOne(const FetchTask& task, FetcherContext& context);
  uint64_t Schedule(BoundedQueue<FetchWork>::ProducerToken& task_token,
                    PipelineSummary& summary);
  void BeginStop();

  // Constant after construction.
  const PipelineOptions options_;
  const std::unique_ptr<Source> source_;
  const std::unique_ptr<Sink> sink_;

  // Fetched batches go back here from whichever thread releases them last,
  // possibly while a shard is destroyed, so the pool outlives the shards.
  BatchPool batch_pool_;

  // Built by the constructor; their threads run inside Run().
  std::unique_ptr<SinkWorker> sink_worker_;
  std::vector<std::unique_ptr<ShardWorker>> shards_;

  TickProgress progress_;
  BoundedQueue<FetchWork> tasks_;
  BoundedQueue<TaskResult> results_;

  std::stop_source stop_;
  std::atomic<bool> stop_begun_{false};
  std::atomic<uint64_t> observations_fetched_{0};

  // Published for Snapshot(). The lane counters are written by fetchers (in
  // FetchOne) and the rest by the scheduler.
  struct AtomicLaneCounters {
    std::atomic<uint64_t> fetches_ok{0};
    std::atomic<uint64_t> fetches_failed{0};
    std::atomic<uint64_t> fetches_skipped{0};
    std::atomic<uint64_t> observations{0};
  };
  std::array<AtomicLaneCounters, kLaneCount> lane_counters_;
  std::atomic<uint64_t> ticks_started_{0};
  std::atomic<bool> first_fetch_done_{false};
  mutable std::mutex source_stats_mutex_;
  SourceStats source_stats_;  // guarded by source_stats_mutex_
  LogRateLimiter fetch_error_log_{10, absl::Minutes(1)};
};

void Pipeline::Impl::RequestStop() {
  stop_.request_stop();
  BeginStop();
}

// Starts the shutdown deadline once, on the first of a stop request and the
// end of the input.
void Pipeline::Impl::BeginStop() {
  if (stop_begun_.exchange(true)) return;
  sink_worker_->SetDeadline(absl::Now() + options_.shutdown_timeout);
}

void Pipeline::Impl::RunFetcher() {
  BoundedQueue<FetchWork>::ConsumerToken consumer = tasks_.MakeConsumerToken();
  FetcherContext context;
  context.result_token.emplace(results_.MakeProducerToken());
  for (auto& shard : shards_) {
    context.shard_tokens.push_back(shard->queue().MakeProducerToken());
  }
  context.positions.resize(shards_.size());
  context.routed_count.resize(shards_.size());

  while (true) {
    FetchWork work;
    tasks_.PopBulk(consumer, &work, 1);
    if (work.exit) return;
    FetchOne(work.task, context);
  }
}

void Pipeline::Impl::FetchOne(const FetchTask& task, FetcherContext& context) {
  // Once stopping, queued tasks are skipped: nothing new is fetched, but the
  // markers below still go out so every shard can complete the tick.
  std::unique_ptr<ObservationBatch> owned = batch_pool_.Take();
  absl::Status status = absl::CancelledError("stopping before fetch");
  if (!stop_.stop_requested()) {
    status = source_->Fetch(task, owned.get());
    if (status.ok() && owned->size() > std::numeric_limits<uint32_t>::max()) {
      status = absl::ResourceExhaustedError(absl::StrCat(
          "fetch returned ", owned->size(),
          " observations, more than one task may return (",
          std::numeric_limits<uint32_t>::max(), "); plan smaller tasks"));
    }
    if (!status.ok()) {
      owned->Clear();  // a failed fetch is not an observation
      uint64_t suppressed = 0;
      if (fetch_error_log_.Allow(&suppressed)) {
        spdlog::error(
            "fetch failed: source={} tick={} task={} lane={} partition={}: {} "
            "({} similar lines suppressed)",
            source_->name(), task.tick, task.index, LaneName(task.lane),
            task.partition, status.ToString(), suppressed);
      }
    }
  }
  const size_t fetched_count = owned->size();
  // The last owner to drop the batch, on any thread, returns it to the pool.
  const std::shared_ptr<const ObservationBatch> fetched(
      owned.release(),
      [pool = &batch_pool_](ObservationBatch* batch) {
        pool->Give(std::unique_ptr<ObservationBatch>(batch));
      });

  // Route by the stable series hash, in fetch order: each shard gets the
  // positions of its observations. Note the buckets on the way; consecutive
  // observations usually share a bucket, so the set is only consulted when
  // the bucket changes.
  const size_t shard_count = shards_.size();
  std::fill(context.routed_count.begin(), context.routed_count.end(), 0);
  absl::flat_hash_set<int64_t> bucket_set;
  int64_t last_bucket = 0;
  auto send_positions = [&](size_t shard) {
    ShardMessage message;
    message.kind = ShardMessage::Kind::kObservations;
    message.tick = task.tick;
    message.partition = task.partition;
    message.batch = fetched;
    message.positions = std::move(context.positions[shard]);
    context.positions[shard] = {};
    shards_[shard]->queue().Push(context.shard_tokens[shard],
                                 std::move(message));
  };
  for (size_t i = 0; i < fetched_count; ++i) {
    const int64_t bucket_ms = fetched->bucket_ms(i);
    if (i == 0 || bucket_ms != last_bucket) {
      bucket_set.insert(bucket_ms);
      last_bucket = bucket_ms;
    }
    const size_t shard = shard_count == 1 ? 0 : fetched->hash(i) % shard_count;
    std::vector<uint32_t>& positions = context.positions[shard];
    if (positions.empty()) {
      positions.reserve(std::min(kRouteBatch, fetched_count - i));
    }
    positions.push_back(static_cast<uint32_t>(i));
    ++context.routed_count[shard];
    if (positions.size() >= kRouteBatch) send_positions(shard);
  }
  auto buckets = std::make_shared<std::vector<int64_t>>(bucket_set.begin(),
                                                        bucket_set.end());
  std::sort(buckets->begin(), buckets->end());

  // Every shard gets the task's marker after its observations.
  for (size_t shard = 0; shard < shard_count; ++shard) {
    if (!context.positions[shard].empty()) send_positions(shard);
    ShardMessage marker;
    marker.kind = ShardMessage::Kind::kTaskDone;
    marker.tick = task.tick;
    marker.partition = task.partition;
    marker.count = context.routed_count[shard];
    marker.buckets = buckets;
    shards_[shard]->queue().Push(context.shard_tokens[shard],
                                 std::move(marker));
  }

  observations_fetched_.fetch_add(fetched_count, std::memory_order_relaxed);
  AtomicLaneCounters& lane = lane_counters_[static_cast<size_t>(task.lane)];
  lane.observations.fetch_add(fetched_count, std::memory_order_relaxed);
  if (status.ok()) {
    lane.fetches_ok.fetch_add(1, std::memory_order_relaxed);
  } else if (status.code() == absl::StatusCode::kCancelled) {
    lane.fetches_skipped.fetch_add(1, std::memory_order_relaxed);
  } else {
    lane.fetches_failed.fetch_add(1, std::memory_order_relaxed);
  }
  results_.Push(*context.result_token,
                TaskResult{task, std::move(status), fetched_count});
}

uint64_t Pipeline::Impl::Schedule(
    BoundedQueue<FetchWork>::ProducerToken& task_token,
    PipelineSummary& summary) {
  std::vector<BoundedQueue<ShardMessage>::ProducerToken> shard_tokens;
  for (auto& shard : shards_) {
    shard_tokens.push_back(shard->queue().MakeProducerToken());
  }
  BoundedQueue<TaskResult>::ConsumerToken result_token =
      results_.MakeConsumerToken();

  uint64_t tick = 0;
  while (!stop_.stop_requested()) {
    // Keep at most kTicksInFlight ticks ahead of the slowest shard.
    if (tick >= kTicksInFlight &&
        !progress_.WaitForAll(tick - kTicksInFlight + 1, stop_.get_token())) {
      break;
    }

    std::optional<TickPlan> plan = source_->NextTick(stop_.get_token());
    if (!plan.has_value()) break;

    // Announce the tick to every shard, then hand out its tasks.
    for (size_t shard = 0; shard < shards_.size(); ++shard) {
      ShardMessage start;
      start.kind = ShardMessage::Kind::kTickStart;
      start.tick = tick;
      start.now = plan->now;
      start.count = plan->tasks.size();
      shards_[shard]->queue().Push(shard_tokens[shard], std::move(start));
    }
    for (FetchTask& task : plan->tasks) {
      task.tick = tick;
      tasks_.Push(task_token, FetchWork{task, false});
    }
    ticks_started_.store(tick + 1, std::memory_order_relaxed);

    // Wait for every task of the tick, so the source learns each outcome
    // before it plans the next tick.
    std::vector<TaskResult> results(plan->tasks.size());
    size_t done = 0;
    while (done < results.size()) {
      done += results_.PopBulk(result_token, results.data() + done,
                               results.size() - done);
    }
    for (const TaskResult& result : results) {
      if (result.status.ok()) {
        ++summary.fetches_ok;
      } else if (result.status.code() != absl::StatusCode::kCancelled) {
        ++summary.fetches_failed;
      }
      source_->OnTaskDone(result.task, result.status);
    }
    if (summary.fetches_ok > 0) first_fetch_done_.store(true);
    {
      std::lock_guard<std::mutex> lock(source_stats_mutex_);
      source_stats_ = source_->Stats();
    }
    ++tick;
  }
  return tick;
}

absl::StatusOr<PipelineSummary> Pipeline::Impl::Run() {
  const absl::Time started = absl::Now();
  PipelineSummary summary;

  if (absl::Status status = sink_->Open(); !status.ok()) return status;

  // Start the consumers before the producers.
  std::jthread sink_thread([this] { sink_worker_->Run(); });
  std::vector<std::jthread> shard_threads;
  for (auto& shard : shards_) {
    shard_threads.emplace_back([&shard] { shard->Run(); });
  }
  std::vector<std::jthread> fetcher_threads;
  for (int i = 0; i < options_.fetchers; ++i) {
    fetcher_threads.emplace_back([this] { RunFetcher(); });
  }
  spdlog::info(
      "pipeline started: source={} sink={} shards={} fetchers={} "
      "threshold={} window_ttl={}",
      source_->name(), sink_->name(), options_.shards, options_.fetchers,
      options_.engine.threshold,
      absl::FormatDuration(options_.engine.window_ttl));

  // Schedule ticks on this thread until the input ends or a stop arrives.
  BoundedQueue<FetchWork>::ProducerToken task_token =
      tasks_.MakeProducerToken();
  const uint64_t ticks = Schedule(task_token, summary);
  summary.ticks = ticks;
  summary.source = source_->Stats();
  summary.stopped_by_request = stop_.stop_requested();
  BeginStop();
  spdlog::info("pipeline stopping after {} ticks ({})", ticks,
               summary.stopped_by_request ? "stop requested" : "end of input");

  // 1. Fetchers: every task of every started tick has a result, so the task
  // queue is empty.
  for (size_t i = 0; i < fetcher_threads.size(); ++i) {
    tasks_.Push(task_token, FetchWork{FetchTask{}, true});
  }
  fetcher_threads.clear();  // joins

  // 2. Shards: complete every tick, flush, hand the rest to the sink.
  for (size_t i = 0; i < shards_.size(); ++i) {
    BoundedQueue<ShardMessage>::ProducerToken token =
        shards_[i]->queue().MakeProducerToken();
    ShardMessage finish;
    finish.kind = ShardMessage::Kind::kFinish;
    finish.tick = ticks;
    shards_[i]->queue().Push(token, std::move(finish));
  }
  shard_threads.clear();  // joins

  // 3. Sink: deliver what the shards sent, until the deadline.
  uint64_t samples_sent = 0;
  for (auto& shard : shards_) {
    samples_sent += shard->samples_sent();
    summary.engine.Add(shard->stats());
  }
  sink_worker_->Finish(samples_sent);
  sink_thread.join();

  if (absl::Status status = sink_->Close(); !status.ok()) {
    spdlog::error("sink {}: close failed: {}", sink_->name(),
                  status.ToString());
  }

  const SinkCounters& counters = sink_worker_->counters();
  summary.observations_fetched = observations_fetched_.load();
  summary.samples_delivered = counters.delivered;
  summary.samples_rejected = counters.rejected;
  summary.samples_undelivered = counters.undelivered;
  summary.samples_superseded = counters.superseded;
  summary.rejected_by_http_status = counters.rejected_by_http_status;
  summary.pushes = counters.pushes;
  summary.push_retries = counters.retries;
  summary.retry_wait = counters.retry_wait;
  summary.wall_time = absl::Now() - started;
  if (counters.undelivered > 0) {
    spdlog::error(
        "{} samples were not delivered before the shutdown deadline of {}",
        counters.undelivered, absl::FormatDuration(options_.shutdown_timeout));
  }
  return summary;
}

PipelineSnapshot Pipeline::Impl::Snapshot() const {
  PipelineSnapshot snapshot;
  snapshot.first_push_age_seconds = MakeFirstPushAgeHistogram();
  snapshot.correction_size = MakeCorrectionSizeHistogram();

  uint64_t samples_sent = 0;
  bool first_tick_everywhere = true;
  for (const auto& shard : shards_) {
    ShardWorker::Published published = shard->Snapshot();
    samples_sent += published.samples_sent;
    first_tick_everywhere &= published.shard.ticks_completed >= 1;
    snapshot.first_push_age_seconds.Add(published.first_push_age_seconds);
    snapshot.correction_size.Add(published.correction_size);
    snapshot.shards.push_back(published.shard);
  }
  snapshot.sink = sink_worker_->Snapshot();
  for (size_t i = 0; i < lane_counters_.size(); ++i) {
    snapshot.lanes[i].fetches_ok = lane_counters_[i].fetches_ok.load();
    snapshot.lanes[i].fetches_failed = lane_counters_[i].fetches_failed.load();
    snapshot.lanes[i].fetches_skipped =
        lane_counters_[i].fetches_skipped.load();
    snapshot.lanes[i].observations = lane_counters_[i].observations.load();
  }
  {
    std::lock_guard<std::mutex> lock(source_stats_mutex_);
    snapshot.source = source_stats_;
  }
  snapshot.ticks_started = ticks_started_.load();
  snapshot.task_queue_depth = tasks_.SizeApprox();
  snapshot.first_fetch_done = first_fetch_done_.load();
  snapshot.sink_ready =
      snapshot.sink.delivered > 0 || (first_tick_everywhere && samples_sent == 0);
  snapshot.stopping = stop_begun_.load();
  return snapshot;
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(
    const PipelineOptions& options, std::unique_ptr<Source> source,
    std::unique_ptr<Sink> sink) {
  if (absl::Status status = ValidatePipelineOptions(options); !status.ok()) {
    return status;
  }
  if (source == nullptr || sink == nullptr) {
    return absl::InvalidArgumentError("pipeline needs a source and a sink");
  }
  return std::unique_ptr<Pipeline>(new Pipeline(
      std::make_unique<Impl>(options, std::move(source), std::move(sink))));
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() = default;

absl::StatusOr<PipelineSummary> Pipeline::Run() { return impl_->Run(); }
void Pipeline::RequestStop() { impl_->RequestStop(); }
PipelineSnapshot Pipeline::Snapshot() const { return impl_->Snapshot(); }

}  // namespace converge

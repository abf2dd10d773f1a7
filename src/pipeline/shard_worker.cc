#include "pipeline/shard_worker.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <utility>

namespace converge {
namespace {

// Messages taken from the queue per wakeup.
constexpr size_t kPopBatch = 1024;

// A sample's place in the per-tick order: by series, then timestamp, then
// arrival. Sorting these small records and then moving each sample once is
// cheaper than sorting the samples themselves.
struct SampleOrder {
  uint64_t hash;
  int64_t timestamp_ms;
  size_t index;  // position in the shard's pending samples
};

// CPU time the calling thread has used.
double ThreadCpuSeconds() {
  timespec now{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) != 0) return 0;
  return static_cast<double>(now.tv_sec) +
         static_cast<double>(now.tv_nsec) * 1e-9;
}

}  // namespace

ShardWorker::ShardWorker(int index, const EngineOptions& engine_options,
                         size_t queue_capacity,
                         BoundedQueue<Sample>* sink_queue,
                         TickProgress* progress)
    : index_(index),
      engine_options_(engine_options),
      sink_queue_(sink_queue),
      progress_(progress),
      queue_(queue_capacity) {}

Engine& ShardWorker::EngineFor(uint32_t partition) {
  if (cached_engine_ != nullptr && cached_partition_ == partition) {
    return *cached_engine_;
  }
  std::unique_ptr<Engine>& engine = engines_[partition];
  if (engine == nullptr) {
    // The pipeline validated the options before building any worker.
    engine = std::move(Engine::Create(engine_options_)).value();
  }
  cached_partition_ = partition;
  cached_engine_ = engine.get();
  return *engine;
}

EngineStats ShardWorker::stats() const {
  EngineStats total;
  for (const auto& [partition, engine] : engines_) total.Add(engine->stats());
  return total;
}

void ShardWorker::Run() {
  BoundedQueue<ShardMessage>::ConsumerToken consumer =
      queue_.MakeConsumerToken();
  std::vector<ShardMessage> batch(kPopBatch);
  sink_token_.emplace(sink_queue_->MakeProducerToken());

  while (true) {
    const size_t count = queue_.PopBulk(consumer, batch.data(), batch.size());
    for (size_t i = 0; i < count; ++i) {
      Handle(batch[i]);
      batch[i] = ShardMessage();  // release batches and bucket lists now
    }

    while (CurrentTickComplete()) CompleteCurrentTick();

    if (finish_seen_ && current_tick_ >= finish_tick_) break;
  }

  // Shutdown: every tick is complete, so flushing now loses nothing fetched.
  for (auto& [partition, engine] : engines_) engine->Flush(&pending_samples_);
  SendSamples();
  Publish();
  sink_token_.reset();
}

void ShardWorker::Publish() {
  std::lock_guard<std::mutex> lock(published_mutex_);
  published_.shard.engine = stats();
  published_.shard.ticks_completed = current_tick_;
  published_.shard.cpu_seconds = ThreadCpuSeconds();
  published_.samples_sent = samples_sent_;
  published_.first_push_age_seconds = first_push_age_;
  published_.correction_size = correction_size_;
}

ShardWorker::Published ShardWorker::Snapshot() const {
  Published published;
  {
    std::lock_guard<std::mutex> lock(published_mutex_);
    published = published_;
  }
  published.shard.queue_depth = queue_.SizeApprox();
  return published;
}

void ShardWorker::Handle(ShardMessage& message) {
  if (message.kind == ShardMessage::Kind::kFinish) {
    finish_seen_ = true;
    finish_tick_ = message.tick;
    return;
  }

  TickState& tick = ticks_[message.tick];
  switch (message.kind) {
    case ShardMessage::Kind::kObservations:
      tick.received += message.positions.size();
      if (message.tick == current_tick_) {
        Ingest(message);
      } else {
        tick.early.push_back(std::move(message));
      }
      break;
    case ShardMessage::Kind::kTaskDone:
      ++tick.tasks_done;
      tick.declared += message.count;
      if (message.buckets != nullptr) {
        tick.buckets.emplace_back(message.partition, std::move(message.buckets));
      }
      break;
    case ShardMessage::Kind::kTickStart:
      tick.started = true;
      tick.now = message.now;
      tick.tasks_expected = message.count;
      break;
    case ShardMessage::Kind::kFinish:
      break;
  }
}

bool ShardWorker::CurrentTickComplete() {
  auto it = ticks_.find(current_tick_);
  if (it == ticks_.end()) return false;
  const TickState& tick = it->second;
  return tick.started && tick.tasks_done == tick.tasks_expected &&
         tick.received == tick.declared;
}

void ShardWorker::CompleteCurrentTick() {
  auto node = ticks_.extract(current_tick_);
  TickState& tick = node.mapped();

  // Open the windows of every bucket the tick returned, then expire: the
  // tick's observations are all in, by the completeness check.
  for (const auto& [partition, buckets] : tick.buckets) {
    Engine& engine = EngineFor(partition);
    for (int64_t bucket_ms : *buckets) engine.NoteBucket(bucket_ms);
  }
  for (auto& [partition, engine] : engines_) {
    engine->Expire(tick.now, &pending_samples_);
  }
  last_now_ = tick.now;
  SendSamples();

  ++current_tick_;
  Publish();
  progress_->MarkCompleted(index_, current_tick_);

  // Observations of the new current tick that came early are ingested now,
  // in the order they arrived.
  auto next = ticks_.find(current_tick_);
  if (next != ticks_.end()) {
    std::vector<ShardMessage> early = std::move(next->second.early);
    next->second.early.clear();
    for (ShardMessage& message : early) Ingest(message);
  }
}

void ShardWorker::Ingest(ShardMessage& message) {
  Engine& engine = EngineFor(message.partition);
  const ObservationBatch& batch = *message.batch;
  views_.clear();
  for (uint32_t position : message.positions) views_.push_back(batch[position]);
  engine.IngestBatch(views_, &pending_samples_);
  views_.clear();  // the views must not outlive the batch
  message.batch.reset();
}

void ShardWorker::SendSamples() {
  if (pending_samples_.empty()) return;

  // Convergence statistics: how old a bucket is when its value first goes
  // out, and how large the corrections pushed after that are.
  for (const Sample& sample : pending_samples_) {
    if (!sample.repush) {
      first_push_age_.Observe(
          absl::ToDoubleSeconds(last_now_ - absl::FromUnixMillis(sample.timestamp_ms)));
    } else if (sample.previous_value > 0) {
      const double previous = static_cast<double>(sample.previous_value);
      correction_size_.Observe(
          std::abs(static_cast<double>(sample.value) - previous) / previous);
    }
  }

  // Order by series, then timestamp. The stable hash decides first because
  // comparing it is cheaper than comparing encodings; equal hashes fall back
  // to the encoding, so distinct series never tie. Equal (series, timestamp)
  // pairs keep their arrival order.
  std::vector<SampleOrder> order;
  order.reserve(pending_samples_.size());
  for (size_t i = 0; i < pending_samples_.size(); ++i) {
    order.push_back(SampleOrder{pending_samples_[i].series.hash(),
                                pending_samples_[i].timestamp_ms, i});
  }
  std::sort(order.begin(), order.end(),
            [this](const SampleOrder& a, const SampleOrder& b) {
              if (a.hash != b.hash) return a.hash < b.hash;
              const SeriesKey& a_series = pending_samples_[a.index].series;
              const SeriesKey& b_series = pending_samples_[b.index].series;
              if (!(a_series == b_series)) return a_series < b_series;
              if (a.timestamp_ms != b.timestamp_ms) {
                return a.timestamp_ms < b.timestamp_ms;
              }
              return a.index < b.index;
            });
  sorted_samples_.clear();
  sorted_samples_.reserve(pending_samples_.size());
  for (const SampleOrder& entry : order) {
    sorted_samples_.push_back(std::move(pending_samples_[entry.index]));
  }

  sink_queue_->PushBulk(*sink_token_, sorted_samples_.data(),
                        sorted_samples_.size());
  sorted_samples_.clear();
  samples_sent_ += pending_samples_.size();
  pending_samples_.clear();
}

}  // namespace converge

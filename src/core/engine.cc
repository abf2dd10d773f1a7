#include "converge/engine.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/strings/str_cat.h"
#include "core/key_arena.h"
#include "core/series_index.h"
#include "core/tracker_table.h"

namespace converge {

// The largest accepted threshold; a tracker's run length is 16 bits wide.
constexpr int kMaxThreshold = std::numeric_limits<uint16_t>::max();

absl::Status ValidateEngineOptions(const EngineOptions& options) {
  if (options.threshold < 1 || options.threshold > kMaxThreshold) {
    return absl::InvalidArgumentError(
        absl::StrCat("threshold must be between 1 and ", kMaxThreshold,
                     ", got ", options.threshold));
  }
  if (options.lookback <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("lookback must be > 0, got ",
                     absl::FormatDuration(options.lookback)));
  }
  if (options.window_ttl <= options.lookback) {
    return absl::InvalidArgumentError(absl::StrCat(
        "window_ttl must be greater than lookback, got window_ttl=",
        absl::FormatDuration(options.window_ttl),
        " lookback=", absl::FormatDuration(options.lookback),
        " (otherwise the live lane could refetch a bucket whose window is "
        "already closed)"));
  }
  return absl::OkStatus();
}

namespace {

// All trackers of one bucket.
struct Window {
  TrackerTable trackers;
  uint64_t size = 0;  // trackers held
};

// One interned series. The entry is released once no open window holds a
// tracker for it and no Prepare() pin is left.
struct SeriesEntry {
  SeriesKey key;
  uint32_t windows = 0;  // open windows holding a tracker of this series
  uint32_t pins = 0;     // Prepare() calls not yet matched by Release()
};

// Uniform access to the key forms that Ingest() accepts.
uint64_t HashOf(const SeriesKey& key) { return key.hash(); }
uint64_t HashOf(const SeriesKeyView& key) { return key.hash; }
std::string_view BytesOf(const SeriesKey& key) { return key.encoded(); }
std::string_view BytesOf(const SeriesKeyView& key) { return key.encoded; }
SeriesKey OwnedKey(const SeriesKey& key) { return key; }
SeriesKey OwnedKey(const SeriesKeyView& key) {
  SeriesKey owned = SeriesKey::FromEncoded(std::string(key.encoded));
  assert(owned.hash() == key.hash);
  return owned;
}

const SeriesKey& KeyOf(const Observation& observation) {
  return observation.series;
}
const SeriesKeyView& KeyOf(const ObservationView& observation) {
  return observation.series;
}

// How far ahead of the observation being ingested IngestBatch() starts
// loading the index slot and then the stored key bytes.
constexpr size_t kPrefetchSlot = 16;
constexpr size_t kPrefetchKey = 8;

}  // namespace

class Engine::Impl {
 public:
  explicit Impl(const EngineOptions& options)
      : options_(options),
        threshold_(static_cast<uint16_t>(options.threshold)),
        ttl_ms_(absl::ToInt64Milliseconds(options.window_ttl)) {}

  template <typename Key>
  void Ingest(const Key& series, int64_t bucket_ms, uint64_t value,
              std::vector<Sample>* out) {
    ++stats_.observations;
    Window* window = FindOrOpenWindow(bucket_ms);
    if (window == nullptr) [[unlikely]] {
      ++stats_.late_dropped;
      return;
    }
    Track(*window, Intern(series), bucket_ms, value, out);
  }
  void Ingest(SeriesHandle series, int64_t bucket_ms, uint64_t value,
              std::vector<Sample>* out) {
    assert(series.id < series_.size());
    assert(series_[series.id].pins > 0);
    ++stats_.observations;
    Window* window = FindOrOpenWindow(bucket_ms);
    if (window == nullptr) [[unlikely]] {
      ++stats_.late_dropped;
      return;
    }
    Track(*window, series.id, bucket_ms, value, out);
  }
  template <typename Batch>
  void IngestBatch(const Batch& batch, std::vector<Sample>* out);
  void IngestBatch(std::span<const PreparedObservation> batch,
                   std::vector<Sample>* out) {
    for (const PreparedObservation& observation : batch) {
      Ingest(observation.series, observation.bucket_ms, observation.value,
             out);
    }
  }

  SeriesHandle Prepare(const SeriesKey& series);
  void Release(SeriesHandle series);
  void NoteBucket(int64_t bucket_ms);
  void Expire(absl::Time now, std::vector<Sample>* out);
  void Flush(std::vector<Sample>* out);

  const EngineStats& stats() {
    stats_.open_windows = windows_.size();
    stats_.series = series_with_trackers_;
    return stats_;
  }
  const EngineOptions& options() const { return options_; }

 private:
  // A direct-mapped cache of recent bucket lookups: the pipeline interleaves
  // observations of several buckets, and a miss costs a b-tree search.
  struct WindowCacheEntry {
    int64_t bucket_ms = 0;
    Window* window = nullptr;  // nullptr: the bucket is closed
    bool valid = false;
  };
  static constexpr int kWindowCacheBits = 4;

  static size_t WindowCacheSlot(int64_t bucket_ms) {
    return static_cast<size_t>(
        (static_cast<uint64_t>(bucket_ms) * 0x9e3779b97f4a7c15ULL) >>
        (64 - kWindowCacheBits));
  }

  // Returns the open window of `bucket_ms`, opening it if needed, or nullptr
  // when the bucket is closed.
  Window* FindOrOpenWindow(int64_t bucket_ms) {
    const WindowCacheEntry& entry = window_cache_[WindowCacheSlot(bucket_ms)];
    if (entry.valid && entry.bucket_ms == bucket_ms) [[likely]] {
      return entry.window;
    }
    return FindOrOpenWindowSlow(bucket_ms);
  }
  Window* FindOrOpenWindowSlow(int64_t bucket_ms);

  // Starts loading the tracker of (id, bucket) when the bucket's window is
  // in the cache. Opens nothing.
  void PrefetchTracker(int64_t bucket_ms, SeriesId id) const {
    const WindowCacheEntry& entry = window_cache_[WindowCacheSlot(bucket_ms)];
    if (entry.valid && entry.bucket_ms == bucket_ms && entry.window) {
      entry.window->trackers.Prefetch(id);
    }
  }
  void ResetWindowCache();

  template <typename Key>
  SeriesId Intern(const Key& key) {
    // Sources list series in a stable order, so the series that followed
    // the previous one last time is a good guess. A guess is only taken
    // when the stored bytes are equal, so it can never merge two series.
    SeriesId id = SeriesIndex::kNoId;
    if (ShouldGuess()) {
      const SeriesId guess = successor_[previous_id_];
      if (guess < series_.size() &&
          keys_.Matches(guess, BytesOf(key), HashOf(key))) [[likely]] {
        id = guess;
        guessing_ = true;
      } else {
        guessing_ = false;
      }
    }

    if (id == SeriesIndex::kNoId) {
      id = index_.Find(HashOf(key), BytesOf(key), StoredBytes());
      if (id == SeriesIndex::kNoId) id = AddSeries(OwnedKey(key));
      if (previous_id_ != SeriesIndex::kNoId) successor_[previous_id_] = id;
    }
    previous_id_ = id;
    return id;
  }

  // Guesses while guesses come true, and after a wrong one retries once
  // every kGuessRetryInterval lookups, so an unordered stream costs few
  // wasted loads.
  bool ShouldGuess() {
    if (previous_id_ == SeriesIndex::kNoId) return false;
    if (guessing_) return true;
    return (++lookups_since_guess_ & (kGuessRetryInterval - 1)) == 0;
  }
  auto StoredBytes() const {
    return [this](SeriesId id) { return keys_.Bytes(id); };
  }
  auto StoredHash() const {
    return [this](SeriesId id) { return series_[id].key.hash(); };
  }
  SeriesId AddSeries(SeriesKey key);
  void ReleaseSeries(SeriesId id);
  void CompactKeysIfSparse();

  inline void Track(Window& window, SeriesId id, int64_t bucket_ms,
                    uint64_t value, std::vector<Sample>* out);
  void ReleaseWindow(int64_t bucket_ms, Window& window, SampleCause cause,
                     std::vector<Sample>* out);
  // Appends a sample. `tracker` is the state before this push, from which
  // the sample records whether a different value went out earlier.
  void Emit(SeriesId id, int64_t bucket_ms, uint64_t value, SampleCause cause,
            const Tracker& tracker, std::vector<Sample>* out);

  // Constant after construction.
  const EngineOptions options_;
  const uint16_t threshold_;
  const int64_t ttl_ms_;

  // Open windows by bucket start. Windows live on the heap so that the
  // cached pointers below survive inserts into the map.
  absl::btree_map<int64_t, std::unique_ptr<Window>> windows_;
  WindowCacheEntry window_cache_[1 << kWindowCacheBits];

  // Buckets this engine has closed. An observation for one of them is late.
  // One entry per closed bucket: a year of minute buckets is about 5 MiB.
  absl::btree_set<int64_t> closed_;

  // Interned series by id. Ids are dense and reused after release, which
  // keeps every window's tracker table compact.
  std::vector<SeriesEntry> series_;
  std::vector<SeriesId> free_ids_;
  KeyArena keys_;  // a packed copy of every key, compared on lookups
  SeriesIndex index_;
  uint64_t series_with_trackers_ = 0;

  // Order prediction for Intern(): by id, the id interned right after it
  // last time (or kNoId). Entries may name released or reused ids; a guess
  // is checked against the key bytes before it is used.
  static constexpr uint32_t kGuessRetryInterval = 16;
  std::vector<SeriesId> successor_;
  SeriesId previous_id_ = SeriesIndex::kNoId;
  bool guessing_ = false;
  uint32_t lookups_since_guess_ = 0;

  // Zeroed tracker pages released by closed windows.
  TrackerPagePool pages_;

  EngineStats stats_;
};

Window* Engine::Impl::FindOrOpenWindowSlow(int64_t bucket_ms) {
  Window* window = nullptr;
  auto it = windows_.find(bucket_ms);
  if (it != windows_.end()) {
    window = it->second.get();
  } else if (!closed_.contains(bucket_ms)) {
    window = windows_.emplace(bucket_ms, std::make_unique<Window>())
                 .first->second.get();
  }

  // A closed bucket stays closed, so a miss is worth caching too.
  window_cache_[WindowCacheSlot(bucket_ms)] =
      WindowCacheEntry{bucket_ms, window, true};
  return window;
}

void Engine::Impl::ResetWindowCache() {
  for (WindowCacheEntry& entry : window_cache_) entry = WindowCacheEntry{};
}

SeriesId Engine::Impl::AddSeries(SeriesKey key) {
  const uint64_t hash = key.hash();
  SeriesId id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
    series_[id] = SeriesEntry{std::move(key)};
  } else {
    id = static_cast<SeriesId>(series_.size());
    series_.push_back(SeriesEntry{std::move(key)});
    successor_.push_back(SeriesIndex::kNoId);
  }

  // The index points into the key arena, so it follows the arena's moves.
  if (keys_.Add(id, series_[id].key.encoded(), hash)) {
    index_.UpdateKeyBytes(StoredBytes());
  }
  index_.Insert(hash, id, keys_.Bytes(id), StoredHash());
  return id;
}

void Engine::Impl::ReleaseSeries(SeriesId id) {
  SeriesEntry& entry = series_[id];
  index_.Erase(entry.key.hash(), id, StoredHash());
  keys_.Remove(id);
  entry.key = SeriesKey();
  free_ids_.push_back(id);
}

void Engine::Impl::CompactKeysIfSparse() {
  if (!keys_.ShouldCompact()) return;
  keys_.Compact();
  index_.UpdateKeyBytes(StoredBytes());
}

SeriesHandle Engine::Impl::Prepare(const SeriesKey& series) {
  const SeriesId id = Intern(series);
  ++series_[id].pins;
  return SeriesHandle{id};
}

void Engine::Impl::Release(SeriesHandle series) {
  assert(series.id < series_.size());
  assert(series_[series.id].pins > 0);
  SeriesEntry& entry = series_[series.id];
  if (--entry.pins == 0 && entry.windows == 0) ReleaseSeries(series.id);
}

void Engine::Impl::Emit(SeriesId id, int64_t bucket_ms, uint64_t value,
                        SampleCause cause, const Tracker& tracker,
                        std::vector<Sample>* out) {
  switch (cause) {
    case SampleCause::kStable:
      ++stats_.samples_stable;
      break;
    case SampleCause::kForced:
      ++stats_.samples_forced;
      break;
    case SampleCause::kFlushed:
      ++stats_.samples_flushed;
      break;
  }
  out->push_back(Sample{series_[id].key, bucket_ms, value, cause,
                        tracker.has_pushed,
                        tracker.has_pushed ? tracker.pushed : 0});
}

inline void Engine::Impl::Track(Window& window, SeriesId id,
                                int64_t bucket_ms, uint64_t value,
                                std::vector<Sample>* out) {
  // The first observation of a (series, bucket) starts its tracker.
  Tracker& tracker = window.trackers.Slot(id, pages_);
  if (tracker.run == 0) {
    ++window.size;
    ++stats_.trackers;
    if (series_[id].windows++ == 0) ++series_with_trackers_;
    tracker.latest = value;
  } else if (value != tracker.latest) {
    // A changed value starts a new run. After stabilization it is a
    // correction, and a lower value than the one pushed is a down revision.
    if (tracker.stabilized) {
      ++stats_.post_stabilization_updates;
      if (tracker.has_pushed && value < tracker.pushed) {
        ++stats_.down_revisions;
      }
    }
    tracker.latest = value;
    tracker.run = 0;
  }

  // Push when the run reaches the threshold, unless that value went out
  // already. The run stops counting at the threshold, so repeats of a pushed
  // value emit nothing.
  if (tracker.run >= threshold_) return;
  ++tracker.run;
  if (tracker.run < threshold_) return;
  tracker.stabilized = true;
  if (tracker.latest_pushed()) return;
  Emit(id, bucket_ms, tracker.latest, SampleCause::kStable, tracker, out);
  tracker.pushed = tracker.latest;
  tracker.has_pushed = true;
}

template <typename Batch>
void Engine::Impl::IngestBatch(const Batch& batch, std::vector<Sample>* out) {
  // On a large index a lookup misses the cache on the index slot and then
  // on the stored key bytes and the tracker, whose addresses depend on the
  // slot. Start these loads a few observations ahead, in two stages, so
  // that they overlap with the work on the observations before.
  const size_t size = batch.size();
  for (size_t i = 0; i < size; ++i) {
    if (guessing_) {
      // While order prediction holds, lookups skip the index and read the
      // key arena and the trackers in id order, which the hardware
      // prefetcher follows without help.
      Ingest(KeyOf(batch[i]), batch[i].bucket_ms, batch[i].value, out);
      continue;
    }
    if (i + kPrefetchSlot < size) {
      index_.Prefetch(HashOf(KeyOf(batch[i + kPrefetchSlot])));
    }
    if (i + kPrefetchKey < size) {
      const auto& ahead = batch[i + kPrefetchKey];
      const SeriesId id = index_.PrefetchKeyBytes(HashOf(KeyOf(ahead)));
      if (id != SeriesIndex::kNoId) PrefetchTracker(ahead.bucket_ms, id);
    }
    Ingest(KeyOf(batch[i]), batch[i].bucket_ms, batch[i].value, out);
  }
}

void Engine::Impl::NoteBucket(int64_t bucket_ms) {
  FindOrOpenWindow(bucket_ms);
}

void Engine::Impl::ReleaseWindow(int64_t bucket_ms, Window& window,
                                 SampleCause cause, std::vector<Sample>* out) {
  window.trackers.Drain(pages_, [&](SeriesId id, const Tracker& tracker) {
    if (!tracker.latest_pushed()) {
      Emit(id, bucket_ms, tracker.latest, cause, tracker, out);
    }

    // Drop the series once nothing refers to it.
    SeriesEntry& entry = series_[id];
    if (--entry.windows == 0) {
      --series_with_trackers_;
      if (entry.pins == 0) ReleaseSeries(id);
    }
  });
  stats_.trackers -= window.size;
  window.size = 0;
}

void Engine::Impl::Expire(absl::Time now, std::vector<Sample>* out) {
  // Close every window with now - bucket >= window_ttl, oldest first.
  const int64_t cutoff = absl::ToUnixMillis(now) - ttl_ms_;
  bool closed_any = false;
  while (!windows_.empty() && windows_.begin()->first <= cutoff) {
    auto it = windows_.begin();
    ReleaseWindow(it->first, *it->second, SampleCause::kForced, out);
    closed_.insert(it->first);
    windows_.erase(it);
    closed_any = true;
  }
  if (!closed_any) return;
  ResetWindowCache();
  CompactKeysIfSparse();

  // Keep enough spare pages for one more window as large as the largest
  // open one, which is what a steady stream of new buckets needs, and free
  // the rest.
  size_t largest = 0;
  for (const auto& [bucket_ms, window] : windows_) {
    largest = std::max(largest, window->trackers.page_count());
  }
  pages_.Trim(largest);
}

void Engine::Impl::Flush(std::vector<Sample>* out) {
  for (auto& [bucket_ms, window] : windows_) {
    ReleaseWindow(bucket_ms, *window, SampleCause::kFlushed, out);
    closed_.insert(bucket_ms);
  }
  windows_.clear();
  ResetWindowCache();
  CompactKeysIfSparse();
  pages_.Trim(0);
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(
    const EngineOptions& options) {
  if (absl::Status status = ValidateEngineOptions(options); !status.ok()) {
    return status;
  }
  return std::unique_ptr<Engine>(new Engine(std::make_unique<Impl>(options)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

void Engine::Ingest(const Observation& observation, std::vector<Sample>* out) {
  impl_->Ingest(observation.series, observation.bucket_ms, observation.value,
                out);
}
void Engine::Ingest(const SeriesKey& series, int64_t bucket_ms, uint64_t value,
                    std::vector<Sample>* out) {
  impl_->Ingest(series, bucket_ms, value, out);
}
void Engine::Ingest(SeriesKeyView series, int64_t bucket_ms, uint64_t value,
                    std::vector<Sample>* out) {
  impl_->Ingest(series, bucket_ms, value, out);
}
SeriesHandle Engine::Prepare(const SeriesKey& series) {
  return impl_->Prepare(series);
}
void Engine::Release(SeriesHandle series) { impl_->Release(series); }
void Engine::Ingest(SeriesHandle series, int64_t bucket_ms, uint64_t value,
                    std::vector<Sample>* out) {
  impl_->Ingest(series, bucket_ms, value, out);
}
void Engine::IngestBatch(std::span<const Observation> observations,
                         std::vector<Sample>* out) {
  impl_->IngestBatch(observations, out);
}
void Engine::IngestBatch(std::span<const ObservationView> observations,
                         std::vector<Sample>* out) {
  impl_->IngestBatch(observations, out);
}
void Engine::IngestBatch(std::span<const PreparedObservation> observations,
                         std::vector<Sample>* out) {
  impl_->IngestBatch(observations, out);
}
void Engine::NoteBucket(int64_t bucket_ms) { impl_->NoteBucket(bucket_ms); }
void Engine::Expire(absl::Time now, std::vector<Sample>* out) {
  impl_->Expire(now, out);
}
void Engine::Flush(std::vector<Sample>* out) { impl_->Flush(out); }
const EngineStats& Engine::stats() const { return impl_->stats(); }
const EngineOptions& Engine::options() const { return impl_->options(); }

}  // namespace converge

#include "converge/engine.h"

#include <cassert>
#include <limits>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/hot_allocator.h"

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

using SeriesId = uint32_t;

// The state of one (series, bucket).
struct Tracker {
  uint64_t latest = 0;      // the value seen last
  uint64_t pushed = 0;      // the value pushed last; valid when has_pushed
  uint16_t run = 0;         // consecutive observations equal to `latest`,
                            // counted up to the threshold and no further
  bool has_pushed = false;
  bool stabilized = false;  // some run of this tracker reached the threshold

  bool latest_pushed() const { return has_pushed && pushed == latest; }
};

using TrackerMap =
    absl::flat_hash_map<SeriesId, Tracker, absl::Hash<SeriesId>,
                        std::equal_to<SeriesId>,
                        HotAllocator<std::pair<const SeriesId, Tracker>>>;

// All trackers of one bucket.
struct Window {
  TrackerMap trackers;
};

// One interned series: the key and the number of open windows holding a
// tracker for it. The entry is released when the count drops to zero.
struct SeriesEntry {
  SeriesKey key;
  uint32_t windows = 0;
};

}  // namespace

class Engine::Impl {
 public:
  explicit Impl(const EngineOptions& options)
      : options_(options),
        ttl_ms_(absl::ToInt64Milliseconds(options.window_ttl)),
        ids_(0, IdHash{&series_}, IdEq{&series_}) {}

  void Ingest(const SeriesKey& series, int64_t bucket_ms, uint64_t value,
              std::vector<Sample>* out);
  void NoteBucket(int64_t bucket_ms);
  void Expire(absl::Time now, std::vector<Sample>* out);
  void Flush(std::vector<Sample>* out);

  const EngineStats& stats() {
    stats_.open_windows = windows_.size();
    stats_.series = series_.size() - free_ids_.size();
    return stats_;
  }
  const EngineOptions& options() const { return options_; }

 private:
  // Hashes and compares interned ids through the series table, so the set of
  // ids is also an index by key without storing each key twice. Lookups by
  // SeriesKey reuse the hash the fetcher already computed.
  struct IdHash {
    using is_transparent = void;
    const std::vector<SeriesEntry>* table;
    size_t operator()(SeriesId id) const { return (*table)[id].key.hash(); }
    size_t operator()(const SeriesKey& key) const { return key.hash(); }
  };
  struct IdEq {
    using is_transparent = void;
    const std::vector<SeriesEntry>* table;
    bool operator()(SeriesId a, SeriesId b) const { return a == b; }
    bool operator()(SeriesId a, const SeriesKey& b) const {
      return (*table)[a].key == b;
    }
    bool operator()(const SeriesKey& a, SeriesId b) const {
      return a == (*table)[b].key;
    }
  };

  Window* FindOrOpenWindow(int64_t bucket_ms);
  SeriesId Intern(const SeriesKey& key);
  void ReleaseWindow(int64_t bucket_ms, Window& window,
                     SampleCause cause, std::vector<Sample>* out);
  void Emit(SeriesId id, int64_t bucket_ms, uint64_t value, SampleCause cause,
            std::vector<Sample>* out);

  // Constant after construction.
  const EngineOptions options_;
  const int64_t ttl_ms_;

  // Open windows by bucket start. Windows live on the heap so that the
  // cached pointer below survives inserts into the map.
  absl::btree_map<int64_t, std::unique_ptr<Window>> windows_;
  int64_t cached_bucket_ = std::numeric_limits<int64_t>::min();
  Window* cached_window_ = nullptr;

  // Buckets this engine has closed. An observation for one of them is late.
  // One entry per closed bucket: a year of minute buckets is about 5 MiB.
  absl::btree_set<int64_t> closed_;

  // Interned series referenced by open windows.
  std::vector<SeriesEntry> series_;
  std::vector<SeriesId> free_ids_;
  absl::flat_hash_set<SeriesId, IdHash, IdEq> ids_;

  EngineStats stats_;
};

Window* Engine::Impl::FindOrOpenWindow(int64_t bucket_ms) {
  if (bucket_ms == cached_bucket_) return cached_window_;

  auto it = windows_.find(bucket_ms);
  if (it == windows_.end()) {
    if (closed_.contains(bucket_ms)) return nullptr;
    it = windows_.emplace(bucket_ms, std::make_unique<Window>()).first;
  }
  cached_bucket_ = bucket_ms;
  cached_window_ = it->second.get();
  return cached_window_;
}

SeriesId Engine::Impl::Intern(const SeriesKey& key) {
  auto it = ids_.find(key);
  if (it != ids_.end()) return *it;

  SeriesId id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
    series_[id] = SeriesEntry{key, 0};
  } else {
    id = static_cast<SeriesId>(series_.size());
    series_.push_back(SeriesEntry{key, 0});
  }
  ids_.insert(id);
  return id;
}

void Engine::Impl::Emit(SeriesId id, int64_t bucket_ms, uint64_t value,
                        SampleCause cause, std::vector<Sample>* out) {
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
  out->push_back(Sample{series_[id].key, bucket_ms, value, cause});
}

void Engine::Impl::Ingest(const SeriesKey& series, int64_t bucket_ms,
                          uint64_t value, std::vector<Sample>* out) {
  ++stats_.observations;

  // A closed bucket never reopens: the observation is late.
  Window* window = FindOrOpenWindow(bucket_ms);
  if (window == nullptr) {
    ++stats_.late_dropped;
    return;
  }

  // The first observation of a (series, bucket) starts its tracker.
  const SeriesId id = Intern(series);
  auto [it, inserted] = window->trackers.try_emplace(id);
  Tracker& tracker = it->second;
  if (inserted) {
    ++series_[id].windows;
    ++stats_.trackers;
    tracker.latest = value;
    tracker.run = 0;
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
  if (tracker.run >= options_.threshold) return;
  ++tracker.run;
  if (tracker.run < options_.threshold) return;
  tracker.stabilized = true;
  if (tracker.latest_pushed()) return;
  tracker.pushed = tracker.latest;
  tracker.has_pushed = true;
  Emit(id, bucket_ms, tracker.latest, SampleCause::kStable, out);
}

void Engine::Impl::NoteBucket(int64_t bucket_ms) {
  FindOrOpenWindow(bucket_ms);
}

void Engine::Impl::ReleaseWindow(int64_t bucket_ms, Window& window,
                                 SampleCause cause, std::vector<Sample>* out) {
  for (auto& [id, tracker] : window.trackers) {
    if (!tracker.latest_pushed()) {
      Emit(id, bucket_ms, tracker.latest, cause, out);
    }

    // Drop the series once no open window refers to it.
    SeriesEntry& entry = series_[id];
    if (--entry.windows == 0) {
      ids_.erase(id);
      entry.key = SeriesKey();
      free_ids_.push_back(id);
    }
  }
  stats_.trackers -= window.trackers.size();
}

void Engine::Impl::Expire(absl::Time now, std::vector<Sample>* out) {
  // Close every window with now - bucket >= window_ttl, oldest first.
  const int64_t cutoff = absl::ToUnixMillis(now) - ttl_ms_;
  while (!windows_.empty() && windows_.begin()->first <= cutoff) {
    auto it = windows_.begin();
    ReleaseWindow(it->first, *it->second, SampleCause::kForced, out);
    closed_.insert(it->first);
    windows_.erase(it);
  }
  cached_bucket_ = std::numeric_limits<int64_t>::min();
  cached_window_ = nullptr;
}

void Engine::Impl::Flush(std::vector<Sample>* out) {
  for (auto& [bucket_ms, window] : windows_) {
    ReleaseWindow(bucket_ms, *window, SampleCause::kFlushed, out);
    closed_.insert(bucket_ms);
  }
  windows_.clear();
  cached_bucket_ = std::numeric_limits<int64_t>::min();
  cached_window_ = nullptr;
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
void Engine::NoteBucket(int64_t bucket_ms) { impl_->NoteBucket(bucket_ms); }
void Engine::Expire(absl::Time now, std::vector<Sample>* out) {
  impl_->Expire(now, out);
}
void Engine::Flush(std::vector<Sample>* out) { impl_->Flush(out); }
const EngineStats& Engine::stats() const { return impl_->stats(); }
const EngineOptions& Engine::options() const { return impl_->options(); }

}  // namespace converge

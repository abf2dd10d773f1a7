// The trackers of one window, stored by series id.
//
// A window contains at most one tracker per series, and the engine interns
// series as small dense ids. A window's trackers therefore live in an array
// indexed by id instead of a hash map, so finding the tracker of an
// observation costs one load once the series id is known.
//
// The array is split into pages of kTrackersPerPage trackers that are
// allocated on first use, so a window that only a few series reach (a
// backfill chunk of a few zones, a bucket that one shard only noted) costs a
// few pages rather than an array as large as the whole id space. Released
// pages go back to a pool and are reused, zeroed, by the next window.
//
// NOTE: ids are handed out in the order series first appear and reused
// after release, so the series of one zone usually share pages. A window
// reached by one series in every page, e.g. after heavy churn scattered a
// metric's ids, costs a full page per tracker.
//
// Thread safety: none; the owning engine's shard thread is the only user.

#ifndef CONVERGE_CORE_TRACKER_TABLE_H_
#define CONVERGE_CORE_TRACKER_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/hot_allocator.h"
#include "core/series_index.h"

namespace converge {

// The state of one (series, bucket). A slot whose `run` is 0 is empty,
// because every tracker counts its first observation and so has run >= 1.
struct Tracker {
  uint64_t latest;  // the value seen last
  uint64_t pushed;  // the value pushed last; valid when has_pushed
  uint16_t run;     // consecutive observations equal to `latest`, counted
                    // up to the threshold and no further
  bool has_pushed;
  bool stabilized;  // some run of this tracker reached the threshold

  bool latest_pushed() const { return has_pushed && pushed == latest; }
};
static_assert(std::is_trivially_copyable_v<Tracker>);
static_assert(sizeof(Tracker) == 24);

// 224 trackers take 5,376 bytes, one of the "fitting" object sizes of
// oneTBB's scalable allocator (three per 16 KiB block). A 256-tracker page
// (6,144 bytes) would be rounded up to the 8,128-byte class and waste a
// quarter of the memory. The division by this constant compiles to a
// multiplication.
inline constexpr size_t kTrackersPerPage = 224;

// Owns zeroed pages of kTrackersPerPage trackers for reuse across windows.
class TrackerPagePool {
 public:
  struct Deleter {
    void operator()(Tracker* page) const {
      HotAllocator<Tracker>().deallocate(page, kTrackersPerPage);
    }
  };
  using Page = std::unique_ptr<Tracker[], Deleter>;

  // Returns a page whose trackers are all zero.
  Page Take() {
    if (!spare_.empty()) {
      Page page = std::move(spare_.back());
      spare_.pop_back();
      return page;
    }
    Page page(HotAllocator<Tracker>().allocate(kTrackersPerPage));
    std::memset(page.get(), 0, kTrackersPerPage * sizeof(Tracker));
    return page;
  }

  // Takes back a page. REQUIRES: every tracker of `page` is zero.
  void Give(Page page) { spare_.push_back(std::move(page)); }

  // Frees spare pages beyond `keep`.
  void Trim(size_t keep) {
    if (spare_.size() > keep) spare_.resize(keep);
  }

 private:
  std::vector<Page> spare_;
};

class TrackerTable {
 public:
  // Returns the slot of series `id`, allocating its page if needed. A slot
  // with run == 0 is empty, and the caller fills it.
  Tracker& Slot(SeriesId id, TrackerPagePool& pool) {
    const size_t page = id / kTrackersPerPage;
    if (page < pages_.size() && pages_[page] != nullptr) [[likely]] {
      return pages_[page][id % kTrackersPerPage];
    }
    return SlotInNewPage(id, pool);
  }

  // Starts loading the slot of `id` if its page exists.
  void Prefetch(SeriesId id) const {
    const size_t page = id / kTrackersPerPage;
    if (page < pages_.size() && pages_[page] != nullptr) {
      __builtin_prefetch(&pages_[page][id % kTrackersPerPage]);
    }
  }

  // Calls `visit(id, tracker)` for every tracker in id order, then zeroes
  // every page and returns it to `pool`. The table is empty afterwards.
  template <typename Visit>
  void Drain(TrackerPagePool& pool, Visit visit) {
    for (size_t page = 0; page < pages_.size(); ++page) {
      if (pages_[page] == nullptr) continue;
      Tracker* trackers = pages_[page].get();
      const auto first = static_cast<SeriesId>(page * kTrackersPerPage);
      for (size_t i = 0; i < kTrackersPerPage; ++i) {
        if (trackers[i].run != 0) {
          visit(static_cast<SeriesId>(first + i), trackers[i]);
        }
      }
      std::memset(trackers, 0, kTrackersPerPage * sizeof(Tracker));
      pool.Give(std::move(pages_[page]));
    }
    pages_.clear();
    page_count_ = 0;
  }

  // Pages this table holds.
  size_t page_count() const { return page_count_; }

 private:
  Tracker& SlotInNewPage(SeriesId id, TrackerPagePool& pool) {
    const size_t page = id / kTrackersPerPage;
    if (page >= pages_.size()) pages_.resize(page + 1);
    pages_[page] = pool.Take();
    ++page_count_;
    return pages_[page][id % kTrackersPerPage];
  }

  std::vector<TrackerPagePool::Page> pages_;  // by id / kTrackersPerPage
  size_t page_count_ = 0;
};

}  // namespace converge

#endif  // CONVERGE_CORE_TRACKER_TABLE_H_

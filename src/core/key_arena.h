// The key bytes of every interned series, packed in one buffer.
//
// Comparing an observation's key with the stored one is the engine's main
// memory traffic. Separately allocated strings land wherever the heap has
// room. Here the bytes of series interned one after another are stored one
// after another, so a pass over the series in their usual order reads the
// buffer sequentially and the hardware prefetcher keeps up. A released key
// leaves a hole, and Compact() rewrites the live keys in id order once holes
// make up more than half of the buffer.
//
// Thread safety: none; the owning engine's shard thread is the only user.

#ifndef CONVERGE_CORE_KEY_ARENA_H_
#define CONVERGE_CORE_KEY_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/hot_allocator.h"
#include "core/series_index.h"

namespace converge {

class KeyArena {
 public:
  // The location of one id's key, with part of its hash for a quick
  // mismatch test.
  struct Entry {
    uint64_t offset = 0;
    uint32_t size = 0;
    uint32_t hash_low = 0;  // low half of the series hash
  };

  // Stores `bytes` as the key of `id`, growing the id table as needed.
  // Returns true when the buffer moved, which invalidates every pointer
  // previously returned by Bytes().
  bool Add(SeriesId id, std::string_view bytes, uint64_t hash) {
    if (id >= entries_.size()) entries_.resize(id + 1);
    const char* const before = buffer_.data();
    const uint64_t offset = buffer_.size();
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    entries_[id] = Entry{offset, static_cast<uint32_t>(bytes.size()),
                         static_cast<uint32_t>(hash)};
    live_bytes_ += bytes.size();
    return buffer_.data() != before;
  }

  // Marks the key of `id` as released.
  void Remove(SeriesId id) {
    live_bytes_ -= entries_[id].size;
    entries_[id] = Entry{};
  }

  // True when the key of `id` is `bytes`, whose hash is `hash`.
  bool Matches(SeriesId id, std::string_view bytes, uint64_t hash) const {
    const Entry& entry = entries_[id];
    return entry.hash_low == static_cast<uint32_t>(hash) &&
           entry.size == bytes.size() &&
           std::memcmp(buffer_.data() + entry.offset, bytes.data(),
                       bytes.size()) == 0;
  }

  std::string_view Bytes(SeriesId id) const {
    const Entry& entry = entries_[id];
    return std::string_view(buffer_.data() + entry.offset, entry.size);
  }

  // True when released keys take more than half of the buffer.
  bool ShouldCompact() const {
    return buffer_.size() - live_bytes_ > live_bytes_ + kMinCompactBytes;
  }

  // Rewrites the live keys in id order into a buffer of their exact size.
  // Invalidates every pointer previously returned by Bytes().
  void Compact() {
    std::vector<char, HotAllocator<char>> packed;
    packed.reserve(live_bytes_);
    for (Entry& entry : entries_) {
      if (entry.size == 0) continue;
      const uint64_t offset = packed.size();
      const char* bytes = buffer_.data() + entry.offset;
      packed.insert(packed.end(), bytes, bytes + entry.size);
      entry.offset = offset;
    }
    buffer_.swap(packed);
  }

 private:
  // Compaction waits until holes exceed this many bytes, so that a small
  // engine does not rewrite its keys over and over.
  static constexpr size_t kMinCompactBytes = 1 << 20;

  std::vector<char, HotAllocator<char>> buffer_;
  std::vector<Entry, HotAllocator<Entry>> entries_;  // by id; size 0: free
  size_t live_bytes_ = 0;
};

}  // namespace converge

#endif  // CONVERGE_CORE_KEY_ARENA_H_

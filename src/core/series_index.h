// The engine's index from a series key to its interned id.
//
// Open addressing with linear probing, kept at most half full. Deletion
// shifts the following entries back instead of leaving tombstones, so a
// long-running engine with series churn keeps short probes.
//
// Each 16-byte slot contains the id, 16 bits of the hash, and the address
// and size of the stored key's bytes. A lookup therefore compares the full key
// straight from the slot, without first loading a per-series record: on a
// large index the slot and the key bytes are the only cache misses. Two
// distinct series with equal hashes never merge, because a match requires
// equal bytes. The bytes stay owned by the caller, who must call
// UpdateKeyBytes() when they move.
//
// Thread safety: none; the owning engine's shard thread is the only user.

#ifndef CONVERGE_CORE_SERIES_INDEX_H_
#define CONVERGE_CORE_SERIES_INDEX_H_

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "core/hot_allocator.h"

namespace converge {

using SeriesId = uint32_t;

class SeriesIndex {
 public:
  static constexpr SeriesId kNoId = std::numeric_limits<SeriesId>::max();

  // Returns the id of the key `bytes`, whose hash is `hash`, or kNoId.
  // `bytes_of(id)` returns the stored bytes of `id`. It is only called for
  // keys too long for a slot's size field.
  template <typename BytesOf>
  SeriesId Find(uint64_t hash, std::string_view bytes, BytesOf bytes_of) const {
    if (slots_.empty()) return kNoId;
    const uint16_t tag = TagOf(hash);
    for (size_t pos = HomeOf(hash);; pos = (pos + 1) & mask_) {
      const Slot& slot = slots_[pos];
      if (slot.id == kNoId) return kNoId;
      if (slot.tag != tag) continue;
      if (slot.size == kLongKey) {
        if (bytes_of(slot.id) == bytes) return slot.id;
      } else if (slot.size == bytes.size() &&
                 std::memcmp(slot.data, bytes.data(), bytes.size()) == 0) {
        return slot.id;
      }
    }
  }

  // Adds `id` for the key `bytes` with hash `hash`. `hash_of(id)` returns the
  // hash of any stored id; it is called only when the table grows.
  // REQUIRES: no id for the same key is stored; `bytes` stays valid and
  // unchanged until Erase() or UpdateKeyBytes() for `id`.
  template <typename HashOf>
  void Insert(uint64_t hash, SeriesId id, std::string_view bytes,
              HashOf hash_of) {
    assert(id != kNoId);
    if ((size_ + 1) * 2 > slots_.size()) Grow(hash_of);
    Place(hash, MakeSlot(hash, id, bytes));
    ++size_;
  }

  // Removes `id`, stored under `hash`. `hash_of` is as for Insert().
  // REQUIRES: `id` is stored under `hash`.
  template <typename HashOf>
  void Erase(uint64_t hash, SeriesId id, HashOf hash_of) {
    size_t hole = HomeOf(hash);
    while (slots_[hole].id != id) hole = (hole + 1) & mask_;

    // Backward shift: move each later entry of the probe run into the hole
    // unless the hole lies before that entry's home position.
    for (size_t next = (hole + 1) & mask_; slots_[next].id != kNoId;
         next = (next + 1) & mask_) {
      const size_t home = HomeOf(hash_of(slots_[next].id));
      if (((next - home) & mask_) >= ((next - hole) & mask_)) {
        slots_[hole] = slots_[next];
        hole = next;
      }
    }
    slots_[hole] = Slot{};
    --size_;
  }

  // Points every slot at the current address of its key bytes,
  // `bytes_of(id)`, after the caller moved them.
  template <typename BytesOf>
  void UpdateKeyBytes(BytesOf bytes_of) {
    for (Slot& slot : slots_) {
      if (slot.id != kNoId) slot.data = bytes_of(slot.id).data();
    }
  }

  // Starts loading the home slot of `hash` into the cache.
  void Prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[HomeOf(hash)]);
  }

  // Returns the id in the first slot that may match `hash`, or kNoId, and
  // starts loading that slot's key bytes. For prefetching: the id is a
  // guess until Find() compares the key.
  SeriesId PrefetchKeyBytes(uint64_t hash) const {
    if (slots_.empty()) return kNoId;
    const uint16_t tag = TagOf(hash);
    for (size_t pos = HomeOf(hash);; pos = (pos + 1) & mask_) {
      const Slot& slot = slots_[pos];
      if (slot.id == kNoId) return kNoId;
      if (slot.tag == tag) {
        __builtin_prefetch(slot.data);
        return slot.id;
      }
    }
  }

  size_t size() const { return size_; }

 private:
  // Sizes from this value up are not stored in a slot.
  static constexpr uint16_t kLongKey = std::numeric_limits<uint16_t>::max();

  struct Slot {
    const char* data = nullptr;  // the stored key bytes
    SeriesId id = kNoId;         // kNoId marks a free slot
    uint16_t size = 0;           // of `data`, or kLongKey
    uint16_t tag = 0;            // the hash's top 16 bits
  };
  static_assert(sizeof(Slot) == 16);

  static constexpr size_t kMinSlots = 16;

  // Fibonacci hashing spreads every bit of the hash over the position. A
  // shard only holds series whose hash is congruent to its index modulo the
  // shard count, so the low bits alone would leave slots unused.
  size_t HomeOf(uint64_t hash) const {
    return static_cast<size_t>((hash * 0x9e3779b97f4a7c15ULL) >> shift_);
  }
  static uint16_t TagOf(uint64_t hash) {
    return static_cast<uint16_t>(hash >> 48);
  }
  static Slot MakeSlot(uint64_t hash, SeriesId id, std::string_view bytes) {
    const uint16_t size = bytes.size() < kLongKey
                              ? static_cast<uint16_t>(bytes.size())
                              : kLongKey;
    return Slot{bytes.data(), id, size, TagOf(hash)};
  }

  void Place(uint64_t hash, const Slot& slot) {
    size_t pos = HomeOf(hash);
    while (slots_[pos].id != kNoId) pos = (pos + 1) & mask_;
    slots_[pos] = slot;
  }

  template <typename HashOf>
  void Grow(HashOf hash_of) {
    const size_t capacity = slots_.empty() ? kMinSlots : slots_.size() * 2;
    std::vector<Slot, HotAllocator<Slot>> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    shift_ = 64 - std::countr_zero(capacity);
    for (const Slot& slot : old) {
      if (slot.id != kNoId) Place(hash_of(slot.id), slot);
    }
  }

  std::vector<Slot, HotAllocator<Slot>> slots_;
  size_t mask_ = 0;
  int shift_ = 63;  // 64 - log2(slot count) once slots_ is allocated
  size_t size_ = 0;
};

}  // namespace converge

#endif  // CONVERGE_CORE_SERIES_INDEX_H_

// Builds canonical series encodings in reused memory.
//
// SeriesKey::FromViews() allocates a label vector and a string for every
// key. A caller that hands observations to the engine in batches needs
// neither. SeriesEncoder writes the same bytes into memory blocks it keeps:
// the metric name, then every label sorted by name in byte order, each
// string prefixed with its length as a varint. It returns them with their
// StableHash() as a SeriesKeyView for Engine::Ingest() or IngestBatch().
// Views stay valid until Clear(), which keeps the blocks for reuse, so a
// steady stream of batches allocates nothing.
//
// Thread safety: none; use one encoder per thread.

#ifndef CONVERGE_CORE_SERIES_ENCODER_H_
#define CONVERGE_CORE_SERIES_ENCODER_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "converge/engine.h"
#include "converge/series.h"
#include "core/absl_compat.h"

namespace converge {

class SeriesEncoder {
 public:
  using LabelView = std::pair<std::string_view, std::string_view>;

  // Encodes `name` with `labels` in any order. The returned view points into
  // this encoder and stays valid until Clear(). Returns kInvalidArgument for
  // an empty metric name, an empty label name, or a label name that appears
  // twice, as SeriesKey::FromViews() does.
  absl::StatusOr<SeriesKeyView> Encode(std::string_view name,
                                       std::span<const LabelView> labels) {
    if (name.empty()) {
      return absl::InvalidArgumentError("invalid series: empty metric name");
    }

    // Sort by label name in byte order. Label names usually differ in their
    // first byte, and deciding on it avoids a memcmp() call per comparison.
    sorted_.assign(labels.begin(), labels.end());
    std::sort(sorted_.begin(), sorted_.end(), NameLess);
    size_t size = name.size() + kMaxVarintBytes;
    for (size_t i = 0; i < sorted_.size(); ++i) {
      if (sorted_[i].first.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid series ", ToAbsl(name), ": empty label name"));
      }
      if (i > 0 && sorted_[i].first == sorted_[i - 1].first) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid series ", ToAbsl(name), ": label \"",
                         ToAbsl(sorted_[i].first), "\" appears twice"));
      }
      size += sorted_[i].first.size() + sorted_[i].second.size() +
              2 * kMaxVarintBytes;
    }

    // Write the encoding at the end of the current block.
    char* const start = Reserve(size);
    char* end = AppendString(name, start);
    for (const LabelView& label : sorted_) {
      end = AppendString(label.first, end);
      end = AppendString(label.second, end);
    }
    used_ += static_cast<size_t>(end - start);
    const std::string_view encoded(start, static_cast<size_t>(end - start));
    return SeriesKeyView{encoded, StableHash(encoded)};
  }

  // Invalidates every view returned so far and keeps the memory for reuse.
  void Clear() {
    current_ = 0;
    used_ = 0;
  }

 private:
  static constexpr size_t kBlockBytes = 64 * 1024;
  static constexpr size_t kMaxVarintBytes = 10;

  struct Block {
    std::unique_ptr<char[]> bytes;
    size_t size;
  };

  // Orders labels by name in byte order, as std::string_view's operator<
  // does (it compares bytes as unsigned char).
  static bool NameLess(const LabelView& a, const LabelView& b) {
    if (!a.first.empty() && !b.first.empty() && a.first[0] != b.first[0]) {
      return static_cast<unsigned char>(a.first[0]) <
             static_cast<unsigned char>(b.first[0]);
    }
    return a.first < b.first;
  }

  // Returns room for `size` bytes, moving to the next block when the current
  // one is too full. A key longer than a block gets a block of its own size.
  char* Reserve(size_t size) {
    if (!blocks_.empty() && used_ + size <= blocks_[current_].size) {
      return blocks_[current_].bytes.get() + used_;
    }
    if (!blocks_.empty()) ++current_;
    if (current_ == blocks_.size() || blocks_[current_].size < size) {
      const size_t block_size = std::max(size, kBlockBytes);
      blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(current_),
                     Block{std::make_unique<char[]>(block_size), block_size});
    }
    used_ = 0;
    return blocks_[current_].bytes.get();
  }

  static char* AppendString(std::string_view text, char* out) {
    uint64_t length = text.size();
    while (length >= 0x80) {
      *out++ = static_cast<char>((length & 0x7f) | 0x80);
      length >>= 7;
    }
    *out++ = static_cast<char>(length);
    std::memcpy(out, text.data(), text.size());
    return out + text.size();
  }

  std::vector<LabelView> sorted_;
  std::vector<Block> blocks_;
  size_t current_ = 0;  // block being filled
  size_t used_ = 0;     // bytes used in blocks_[current_]
};

}  // namespace converge

#endif  // CONVERGE_CORE_SERIES_ENCODER_H_

#include "converge/series.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/absl_compat.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace converge {
namespace {

using LabelView = std::pair<std::string_view, std::string_view>;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads one length-prefixed string at `*pos` and moves `*pos` past it.
// The encoding is produced by this file only, so it is trusted.
std::string_view ReadString(std::string_view bytes, size_t* pos) {
  uint64_t length = 0;
  int shift = 0;
  while (true) {
    const auto byte = static_cast<uint8_t>(bytes[(*pos)++]);
    length |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) break;
    shift += 7;
  }
  std::string_view result = bytes.substr(*pos, length);
  *pos += length;
  return result;
}

void AppendString(std::string_view text, std::string* out) {
  AppendVarint(text.size(), out);
  out->append(text);
}

}  // namespace

uint64_t StableHash(std::string_view bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

absl::StatusOr<SeriesKey> SeriesKey::FromViews(std::string_view name,
                                               std::vector<LabelView> labels) {
  if (name.empty()) {
    return absl::InvalidArgumentError("invalid series: empty metric name");
  }

  // Sort by label name in byte order; std::string_view compares bytes.
  std::sort(labels.begin(), labels.end(),
            [](const LabelView& a, const LabelView& b) {
              return a.first < b.first;
            });
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].first.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid series ", ToAbsl(name), ": empty label name"));
    }
    if (i > 0 && labels[i].first == labels[i - 1].first) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid series ", ToAbsl(name), ": label \"", ToAbsl(labels[i].first),
          "\" appears twice"));
    }
  }

  size_t size = name.size() + 2;
  for (const LabelView& label : labels) {
    size += label.first.size() + label.second.size() + 4;
  }
  std::string encoded;
  encoded.reserve(size);
  AppendString(name, &encoded);
  for (const LabelView& label : labels) {
    AppendString(label.first, &encoded);
    AppendString(label.second, &encoded);
  }
  const uint64_t hash = StableHash(encoded);
  return SeriesKey(std::move(encoded), hash);
}

absl::StatusOr<SeriesKey> SeriesKey::Make(std::string_view name,
                                          std::vector<Label> labels) {
  std::vector<LabelView> views;
  views.reserve(labels.size());
  for (const Label& label : labels) views.emplace_back(label.name, label.value);
  return FromViews(name, std::move(views));
}

SeriesKey SeriesKey::FromEncoded(std::string encoded) {
  const uint64_t hash = StableHash(encoded);
  return SeriesKey(std::move(encoded), hash);
}

std::string_view SeriesKey::name() const {
  if (encoded_.empty()) return {};
  size_t pos = 0;
  return ReadString(encoded_, &pos);
}

std::vector<LabelView> SeriesKey::labels() const {
  std::vector<LabelView> result;
  if (encoded_.empty()) return result;
  size_t pos = 0;
  ReadString(encoded_, &pos);
  while (pos < encoded_.size()) {
    std::string_view label_name = ReadString(encoded_, &pos);
    std::string_view label_value = ReadString(encoded_, &pos);
    result.emplace_back(label_name, label_value);
  }
  return result;
}

std::string SeriesKey::ToString() const {
  std::string text(name());
  const std::vector<LabelView> pairs = labels();
  if (pairs.empty()) return text;
  text.push_back('{');
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) text.push_back(',');
    absl::StrAppend(&text, ToAbsl(pairs[i].first), "=\"",
                    absl::StrReplaceAll(ToAbsl(pairs[i].second), {{"\\", "\\\\"},
                                                          {"\"", "\\\""},
                                                          {"\n", "\\n"}}),
                    "\"");
  }
  text.push_back('}');
  return text;
}

}  // namespace converge

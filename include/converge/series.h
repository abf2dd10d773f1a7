// Series identity: a metric name plus a set of labels, encoded once into a
// canonical byte string so that equality, hashing and shard routing never
// depend on the order in which a source listed the labels.
//
// Thread safety: SeriesKey is an immutable value type. Distinct objects may be
// used from different threads; a const object may be shared.

#ifndef CONVERGE_SERIES_H_
#define CONVERGE_SERIES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace converge {

// One label as a source produced it. Order inside a list carries no meaning.
struct Label {
  std::string name;
  std::string value;
};

// Canonical identity of one series.
//
// The encoding is the metric name followed by every label sorted by name in
// byte order, each string prefixed with its length as a varint. Two label
// lists with the same pairs in another order therefore encode to the same
// bytes. `hash()` is XXH3-64 of those bytes: stable across processes, hosts
// and runs, so it can route a series to a shard deterministically. Two
// distinct series with equal hashes still compare unequal, because equality
// compares the full encoding.
class SeriesKey {
 public:
  // Builds the key of `name` with `labels` in any order.
  // Returns kInvalidArgument for an empty metric name, an empty label name, or
  // a label name that appears twice.
  static absl::StatusOr<SeriesKey> Make(std::string_view name,
                                        std::vector<Label> labels);

  // Same as Make() for label pairs already held as views (no copies of the
  // strings are made before encoding).
  static absl::StatusOr<SeriesKey> FromViews(
      std::string_view name,
      std::vector<std::pair<std::string_view, std::string_view>> labels);

  // Rebuilds a key from bytes produced by `encoded()`.
  // REQUIRES: `encoded` came from encoded() of a valid key.
  static SeriesKey FromEncoded(std::string encoded);

  SeriesKey() = default;

  const std::string& encoded() const { return encoded_; }
  uint64_t hash() const { return hash_; }

  // The metric name (a view into this key).
  std::string_view name() const;

  // Labels sorted by name in byte order (views into this key).
  std::vector<std::pair<std::string_view, std::string_view>> labels() const;

  // Prometheus text form, e.g. `requests_total{status="200",zone="a"}`, with
  // label values escaped as in the exposition format. For logs and tests.
  std::string ToString() const;

  friend bool operator==(const SeriesKey& a, const SeriesKey& b) {
    return a.hash_ == b.hash_ && a.encoded_ == b.encoded_;
  }
  friend bool operator<(const SeriesKey& a, const SeriesKey& b) {
    return a.encoded_ < b.encoded_;
  }

 private:
  SeriesKey(std::string encoded, uint64_t hash)
      : encoded_(std::move(encoded)), hash_(hash) {}

  std::string encoded_;
  uint64_t hash_ = 0;
};

// XXH3-64 of `bytes`; the hash SeriesKey uses.
uint64_t StableHash(std::string_view bytes);

}  // namespace converge

#endif  // CONVERGE_SERIES_H_

// ParseRecordedFetch: one recorded Cloudflare fetch, read with simdjson's DOM
// API.
//
// The document is parsed once, serially. Turning each observation into a
// SeriesKey (sorting labels, encoding, hashing) is the expensive part, so for
// large recordings it runs as a oneTBB parallel loop over blocks of
// observations. The DOM is immutable after parsing, so workers only read it.

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "converge/sources.h"
#include "converge/time_util.h"
#include "core/absl_compat.h"

#ifndef CONVERGE_TSAN
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#endif

namespace converge {
namespace {

namespace dom = simdjson::dom;

// Below this many observations the cost of spawning tasks outweighs the
// key building they would share.
constexpr size_t kParallelMinObservations = 4096;
constexpr size_t kObservationsPerBlock = 1024;

// Maximum number of characters of an invalid JSON value quoted in an error.
constexpr size_t kMaxQuotedChars = 64;

std::string Quote(dom::element element) {
  std::string text = simdjson::to_string(element);
  if (text.size() > kMaxQuotedChars) {
    text.resize(kMaxQuotedChars);
    text.append("...");
  }
  return text;
}

absl::Status InvalidFetch(absl::string_view detail) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid recorded fetch: ", detail));
}

absl::Status InvalidObservation(size_t index, absl::string_view field,
                                absl::string_view detail) {
  return InvalidFetch(absl::StrCat("observation ", index, ": field \"", field,
                                   "\" ", detail));
}

// Reads the string field `field` of `object`. `index` names the observation
// in errors.
absl::StatusOr<std::string_view> ObservationString(dom::object object,
                                                   size_t index,
                                                   std::string_view field) {
  dom::element element;
  if (object[field].get(element) != simdjson::SUCCESS) {
    return InvalidObservation(index, ToAbsl(field), "is missing");
  }
  std::string_view text;
  if (element.get_string().get(text) != simdjson::SUCCESS) {
    return InvalidObservation(index, ToAbsl(field),
                              absl::StrCat("must be a string, got ",
                                           Quote(element)));
  }
  return text;
}

// Reads `value`: a JSON integer in [0, 2^64). Fractions and exponents are
// rejected even when they denote a whole number, because counters are
// recorded as plain integers and anything else means a broken recording.
absl::StatusOr<uint64_t> ObservationValue(dom::object object, size_t index) {
  dom::element element;
  if (object["value"].get(element) != simdjson::SUCCESS) {
    return InvalidObservation(index, "value", "is missing");
  }

  switch (element.type()) {
    case dom::element_type::UINT64:
      return element.get_uint64().value_unsafe();
    case dom::element_type::INT64: {
      const int64_t value = element.get_int64().value_unsafe();
      if (value < 0) {
        return InvalidObservation(
            index, "value", absl::StrCat("must be >= 0, got ", value));
      }
      return static_cast<uint64_t>(value);
    }
    case dom::element_type::DOUBLE:
      return InvalidObservation(
          index, "value",
          absl::StrCat("must be a whole number without fraction or exponent, "
                       "got ",
                       Quote(element)));
    default:
      return InvalidObservation(
          index, "value",
          absl::StrCat("must be a non-negative integer, got ", Quote(element)));
  }
}

// Reads `labels`: an object of string values, collected as views into the
// parsed document.
absl::StatusOr<std::vector<std::pair<std::string_view, std::string_view>>>
ObservationLabels(dom::object object, size_t index) {
  dom::element element;
  if (object["labels"].get(element) != simdjson::SUCCESS) {
    return InvalidObservation(index, "labels", "is missing");
  }
  dom::object labels;
  if (element.get_object().get(labels) != simdjson::SUCCESS) {
    return InvalidObservation(
        index, "labels",
        absl::StrCat("must be an object, got ", Quote(element)));
  }

  std::vector<std::pair<std::string_view, std::string_view>> views;
  views.reserve(labels.size());
  for (dom::key_value_pair label : labels) {
    std::string_view value;
    if (label.value.get_string().get(value) != simdjson::SUCCESS) {
      return InvalidObservation(
          index, "labels",
          absl::StrCat("label \"", ToAbsl(label.key), "\" must be a string, got ",
                       Quote(label.value)));
    }
    views.emplace_back(label.key, value);
  }
  return views;
}

absl::StatusOr<Observation> ParseObservation(dom::element element,
                                             size_t index) {
  dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) {
    return InvalidFetch(absl::StrCat("observation ", index,
                                     " must be an object, got ",
                                     Quote(element)));
  }

  // Fields.
  absl::StatusOr<std::string_view> name =
      ObservationString(object, index, "name");
  if (!name.ok()) return name.status();
  auto labels = ObservationLabels(object, index);
  if (!labels.ok()) return labels.status();
  absl::StatusOr<uint64_t> value = ObservationValue(object, index);
  if (!value.ok()) return value.status();
  absl::StatusOr<std::string_view> bucket_text =
      ObservationString(object, index, "bucket");
  if (!bucket_text.ok()) return bucket_text.status();

  // Bucket time and series identity.
  absl::StatusOr<int64_t> bucket_ms = ParseRfc3339Millis(*bucket_text);
  if (!bucket_ms.ok()) {
    return InvalidObservation(index, "bucket", bucket_ms.status().message());
  }
  absl::StatusOr<SeriesKey> key =
      SeriesKey::FromViews(*name, *std::move(labels));
  if (!key.ok()) {
    return InvalidFetch(
        absl::StrCat("observation ", index, ": ", key.status().message()));
  }

  Observation observation;
  observation.series = *std::move(key);
  observation.bucket_ms = *bucket_ms;
  observation.value = *value;
  return observation;
}

// The failure with the lowest observation index among those found by
// concurrent blocks, so the error does not depend on scheduling.
class FirstFailure {
 public:
  // Whether observation `index` can still matter: nothing failed before it.
  bool Relevant(size_t index) const {
    return index < index_.load(std::memory_order_relaxed);
  }

  void Record(size_t index, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (index < index_.load(std::memory_order_relaxed)) {
      index_.store(index, std::memory_order_relaxed);
      status_ = std::move(status);
    }
  }

  // Call after every block finished.
  absl::Status status() const { return status_; }

 private:
  std::mutex mu_;
  std::atomic<size_t> index_{std::numeric_limits<size_t>::max()};
  absl::Status status_;  // guarded by mu_ while blocks run
};

// Fills `out[begin, end)` from `elements`, stopping at the first failure.
void ParseBlock(const std::vector<dom::element>& elements, size_t begin,
                size_t end, std::vector<Observation>* out,
                FirstFailure* failure) {
  for (size_t i = begin; i < end && failure->Relevant(i); ++i) {
    absl::StatusOr<Observation> observation = ParseObservation(elements[i], i);
    if (!observation.ok()) {
      failure->Record(i, observation.status());
      return;
    }
    (*out)[i] = *std::move(observation);
  }
}

// Parses every observation into `out`, in file order.
absl::Status ParseObservations(const std::vector<dom::element>& elements,
                               std::vector<Observation>* out) {
  out->resize(elements.size());
  FirstFailure failure;

#ifdef CONVERGE_TSAN
  // Debian's libtbb is not instrumented for ThreadSanitizer, which would
  // report its task hand-offs as races, so TSan builds run the loop serially.
  ParseBlock(elements, 0, elements.size(), out, &failure);
#else
  if (elements.size() < kParallelMinObservations) {
    ParseBlock(elements, 0, elements.size(), out, &failure);
  } else {
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, elements.size(), kObservationsPerBlock),
        [&](const tbb::blocked_range<size_t>& block) {
          ParseBlock(elements, block.begin(), block.end(), out, &failure);
        });
  }
#endif

  return failure.status();
}

absl::StatusOr<absl::Time> TopLevelTime(dom::object object,
                                        std::string_view field) {
  std::string_view text;
  if (object[field].get_string().get(text) != simdjson::SUCCESS) {
    return InvalidFetch(
        absl::StrCat("field \"", ToAbsl(field), "\" is missing or not a string"));
  }
  absl::StatusOr<absl::Time> time = ParseRfc3339(text);
  if (!time.ok()) {
    return InvalidFetch(
        absl::StrCat("field \"", ToAbsl(field), "\": ", time.status().message()));
  }
  return time;
}

}  // namespace

absl::StatusOr<RecordedFetch> ParseRecordedFetch(std::string_view json) {
  // Document. simdjson needs padding after the text, hence the copy.
  dom::parser parser;
  const simdjson::padded_string padded(json);
  dom::element root;
  if (const auto error = parser.parse(padded).get(root);
      error != simdjson::SUCCESS) {
    return InvalidFetch(
        absl::StrCat("not valid JSON: ", simdjson::error_message(error)));
  }
  dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return InvalidFetch("the top level must be an object");
  }

  // Header fields.
  RecordedFetch fetch;
  if (object["seq"].get_int64().get(fetch.seq) != simdjson::SUCCESS) {
    return InvalidFetch("field \"seq\" is missing or not an integer");
  }
  absl::StatusOr<absl::Time> start = TopLevelTime(object, "start");
  if (!start.ok()) return start.status();
  absl::StatusOr<absl::Time> end = TopLevelTime(object, "end");
  if (!end.ok()) return end.status();
  if (*end < *start) {
    return InvalidFetch(absl::StrCat(
        "field \"end\" (", absl::FormatTime(*end, absl::UTCTimeZone()),
        ") is before \"start\" (",
        absl::FormatTime(*start, absl::UTCTimeZone()), ")"));
  }
  fetch.start = *start;
  fetch.end = *end;

  // Observations, in file order.
  dom::array array;
  if (object["observations"].get_array().get(array) != simdjson::SUCCESS) {
    return InvalidFetch("field \"observations\" is missing or not an array");
  }
  std::vector<dom::element> elements;
  elements.reserve(array.size());
  for (dom::element element : array) elements.push_back(element);
  absl::Status status = ParseObservations(elements, &fetch.observations);
  if (!status.ok()) return status;
  return fetch;
}

}  // namespace converge

// The contract between the pipeline's sink thread and a destination for
// samples (file, remote write, null).
//
// Thread safety: a Sink is used by exactly one thread, the pipeline's sink
// thread, from Open() to Close(). Implementations need no locking.

#ifndef CONVERGE_SINK_H_
#define CONVERGE_SINK_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "converge/observation.h"

namespace converge {

class Sink {
 public:
  virtual ~Sink() = default;

  // Short name for logs, e.g. "remote-write".
  virtual std::string_view name() const = 0;

  // Prepares the destination (opens a file, a connection handle). Called once
  // on the sink thread before the first Push().
  virtual absl::Status Open() { return absl::OkStatus(); }

  // Delivers one batch, all or nothing from the caller's point of view.
  // Returns:
  //   OK             delivered;
  //   kUnavailable   a transient failure (network error, HTTP 5xx or 429):
  //                  the caller retries the same batch later;
  //   anything else  the receiver rejected the batch: the caller counts and
  //                  logs it and does not retry.
  virtual absl::Status Push(std::span<const Sample> batch) = 0;

  // Flushes buffers and releases the destination. Called once, last.
  virtual absl::Status Close() { return absl::OkStatus(); }
};

// Status payload key under which a sink may attach a receiver's Retry-After
// delay (decimal seconds as text) to a kUnavailable status.
inline constexpr std::string_view kRetryAfterPayload =
    "converge/retry-after-seconds";

// Reads the Retry-After delay attached to `status`, if any.
std::optional<absl::Duration> RetryAfter(const absl::Status& status);

// Status payload key under which a sink attaches the receiver's HTTP status
// code (decimal text) to a failed push, so rejections can be counted by
// status and a 4xx batch can be split to find the rejected samples.
inline constexpr std::string_view kHttpStatusPayload = "converge/http-status";

// Reads the HTTP status attached to `status`, if any.
std::optional<int> HttpStatusOf(const absl::Status& status);

}  // namespace converge

#endif  // CONVERGE_SINK_H_

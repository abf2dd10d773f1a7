// Conversions between source time strings and the Unix milliseconds that
// buckets and samples carry.
//
// Thread safety: free functions without shared state.

#ifndef CONVERGE_TIME_UTIL_H_
#define CONVERGE_TIME_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace converge {

// Parses an RFC 3339 time with its own offset (`Z`, `+05:30`, `-07:00`,
// optional fractional seconds) into an absl::Time. The host's time zone never
// changes the result. Returns kInvalidArgument naming the text on failure.
absl::StatusOr<absl::Time> ParseRfc3339(std::string_view text);

// Same as ParseRfc3339, truncated to Unix milliseconds.
absl::StatusOr<int64_t> ParseRfc3339Millis(std::string_view text);

// Formats Unix milliseconds as RFC 3339 in UTC, e.g. 2026-06-24T18:59:00Z.
std::string FormatMillisUtc(int64_t unix_ms);

// Parses an HTTP Retry-After value: delay-seconds, or an HTTP-date (RFC 9110
// IMF-fixdate) measured from `now`; a past date gives zero. Returns nullopt
// for anything else.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                              absl::Time now);

}  // namespace converge

#endif  // CONVERGE_TIME_UTIL_H_

#include "converge/time_util.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/absl_compat.h"

namespace converge {

absl::StatusOr<absl::Time> ParseRfc3339(std::string_view text) {
  // RFC3339_full accepts fractional seconds and requires an explicit offset
  // (`Z` or `+hh:mm`), so the host's time zone never enters the result.
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, ToAbsl(text), &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid RFC 3339 time \"", ToAbsl(text), "\": ", error,
        " (expected e.g. 2026-06-24T18:59:00Z or 2026-06-24T11:59:00-07:00)"));
  }
  return time;
}

absl::StatusOr<int64_t> ParseRfc3339Millis(std::string_view text) {
  absl::StatusOr<absl::Time> time = ParseRfc3339(text);
  if (!time.ok()) return time.status();
  return absl::ToUnixMillis(*time);
}

std::string FormatMillisUtc(int64_t unix_ms) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::optional<absl::Duration> ParseRetryAfter(std::string_view value,
                                                    absl::Time now) {
  const absl::string_view text = absl::StripAsciiWhitespace(ToAbsl(value));
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    if (seconds < 0) return std::nullopt;
    return absl::Seconds(seconds);
  }

  absl::Time date;
  std::string error;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", text, absl::UTCTimeZone(),
                       &date, &error)) {
    return std::nullopt;
  }
  return std::max(absl::ZeroDuration(), date - now);
}

}  // namespace converge

#include "converge/sink.h"

#include <cmath>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "core/absl_compat.h"

namespace converge {

std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  const absl::optional<absl::Cord> payload =
      status.GetPayload(ToAbsl(kRetryAfterPayload));
  if (!payload.has_value()) return std::nullopt;

  // A payload that is not a finite, non-negative number of seconds is
  // ignored, so a malformed receiver header falls back to normal backoff.
  const std::string text(*payload);
  double seconds = 0;
  if (!absl::SimpleAtod(text, &seconds)) return std::nullopt;
  if (!std::isfinite(seconds) || seconds < 0) return std::nullopt;
  return absl::Seconds(seconds);
}

std::optional<int> HttpStatusOf(const absl::Status& status) {
  const absl::optional<absl::Cord> payload =
      status.GetPayload(ToAbsl(kHttpStatusPayload));
  if (!payload.has_value()) return std::nullopt;
  int code = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &code)) return std::nullopt;
  return code;
}

}  // namespace converge

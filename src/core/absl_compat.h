// Bridges between std::string_view and absl::string_view.
//
// Debian 12 builds abseil 20220623 with its own absl::string_view class
// rather than an alias of std::string_view, so the two do not convert into
// each other implicitly. converge's interfaces use std::string_view; calls
// into abseil (StrCat, ParseTime, hash maps keyed by absl::string_view) go
// through these helpers.

#ifndef CONVERGE_CORE_ABSL_COMPAT_H_
#define CONVERGE_CORE_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace converge {

inline absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

inline std::string_view ToStd(absl::string_view text) {
  return std::string_view(text.data(), text.size());
}

}  // namespace converge

#endif  // CONVERGE_CORE_ABSL_COMPAT_H_

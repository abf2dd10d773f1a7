// Reading secrets (tokens, passwords) from files, so they never appear in
// argv, where every local user can read them from /proc.

#ifndef CONVERGE_CORE_SECRET_FILE_H_
#define CONVERGE_CORE_SECRET_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace converge {

// Returns the content of `path` with surrounding whitespace removed.
// Errors name `flag` and the path, never the content: kNotFound or
// kPermissionDenied when the file cannot be read, kInvalidArgument when it
// is empty. The message for an empty file asks for the `secret_name` (such
// as "API token") to be written into it.
absl::StatusOr<std::string> ReadSecretFile(
    const std::string& path, const std::string& flag,
    const std::string& secret_name = "secret");

}  // namespace converge

#endif  // CONVERGE_CORE_SECRET_FILE_H_

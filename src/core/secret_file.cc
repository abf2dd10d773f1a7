#include "core/secret_file.h"

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace converge {

absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           const std::string& flag,
                                           const std::string& secret_name) {
  std::ifstream in(path);
  if (!in) {
    const int error = errno;
    const std::string message =
        absl::StrCat("cannot read ", flag, "=", path, ": ",
                     std::error_code(error, std::generic_category()).message());
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::NotFoundError(message);
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string secret(absl::StripAsciiWhitespace(text.str()));
  if (secret.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", path, " is empty; write the ", secret_name,
                     " into it"));
  }
  return secret;
}

}  // namespace converge

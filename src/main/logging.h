// Logging set-up for converge-exporter: spdlog on standard error (standard
// output may carry the file sink's samples), as text or as JSON lines.

#ifndef CONVERGE_MAIN_LOGGING_H_
#define CONVERGE_MAIN_LOGGING_H_

#include <string>

namespace converge {

// Installs the process-wide logger. `level` is trace, debug, info, warn,
// error or off; `format` is text or json.
// REQUIRES: both were validated by the flag parser.
void SetUpLogging(const std::string& level, const std::string& format);

// Escapes `text` for use inside a JSON string (quotes not included).
std::string JsonEscape(std::string_view text);

}  // namespace converge

#endif  // CONVERGE_MAIN_LOGGING_H_

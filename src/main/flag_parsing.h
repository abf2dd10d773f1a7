// Command-line parsing shared by converge-exporter and converge-report.
//
// Both programs define abseil flags with underscores and accept them with
// dashes (`--window-ttl=15m`). They read argv here rather than through
// absl::ParseCommandLine, so that every invalid value gets a message naming
// the flag, the value and what is allowed, and the program exits with
// status 2. flag_parsing.cc also defines the flags of the built-in sim that
// both programs accept: --sim-zones, --sim-series-per-zone, --sim-seed,
// --sim-duration and --sim-start.

#ifndef CONVERGE_MAIN_FLAG_PARSING_H_
#define CONVERGE_MAIN_FLAG_PARSING_H_

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "converge/sources.h"

namespace converge {

// The command-line syntax of one program: its flags, its help arguments and
// whether it accepts --version.
struct FlagSyntax {
  std::string_view program;  // the name in messages, e.g. "converge-report"
  // The flags that argv may set, by their underscored names. Other abseil
  // flags linked into the binary are reported as unknown.
  std::span<const char* const> flag_names;
  // Arguments that request the --help text, e.g. "--help" and "-h".
  std::vector<std::string_view> help_arguments;
  bool accepts_version = false;  // whether --version requests the version
};

// The outcome of reading argv.
struct FlagArguments {
  enum class Request { kRun, kPrintHelp, kPrintVersion };
  Request request = Request::kRun;
  std::set<std::string> set_flags;  // underscored names that argv set
  std::string error;                // the first error, or empty
};

// Sets the flags named in `syntax` from argv and stops at the first help or
// version request or error. Accepts --name=value, --name value and -name=value,
// and for boolean flags also --name and --noname.
FlagArguments ApplyFlagArguments(int argc, char** argv,
                                 const FlagSyntax& syntax);

// Returns the flag name as written on the command line: `window_ttl` becomes
// `window-ttl`.
std::string DashedFlagName(std::string_view name);

// Returns the start of the --help text: the usage line, `description` (whole
// lines, each ending in a newline) and how durations are written.
std::string FlagHelpHeader(std::string_view program,
                           std::string_view description);

// Returns the --help entry of one flag: its dashed name, default and help
// text, on two indented lines.
std::string FlagHelpEntry(const char* name);

// Validation of flag values that keeps the first error and ignores later
// ones. `flag` arguments are underscored flag names.
class FlagChecker {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void Fail(std::string message);

  void Range(std::string_view flag, int64_t value, int64_t min, int64_t max);
  void Positive(std::string_view flag, absl::Duration value);
  void NotNegative(std::string_view flag, absl::Duration value);
  void OneOf(std::string_view flag, const std::string& value,
             const std::vector<std::string>& allowed);

  // Parses an RFC 3339 time. Returns nothing and records an error when
  // `value` is not one.
  std::optional<absl::Time> Rfc3339Time(std::string_view flag,
                                        const std::string& value);

  // Checks that --window-ttl exceeds --lookback, unless an earlier check
  // failed.
  void WindowTtlAboveLookback(absl::Duration window_ttl,
                              absl::Duration lookback);

  // Runs a component's own validation of the options built from the flags,
  // unless an earlier check failed, and records the message of its error.
  void Validate(absl::FunctionRef<absl::Status()> validate);

 private:
  std::string error_;
};

// Checks the sim flags defined in flag_parsing.cc and fills the sim's size,
// seed, duration and start from them. An empty --sim-start means the current
// minute. Leaves `sim->lanes` and `sim->realtime` to the caller.
void BuildSimOptionsFromFlags(SimOptions* sim, FlagChecker& check);

}  // namespace converge

#endif  // CONVERGE_MAIN_FLAG_PARSING_H_

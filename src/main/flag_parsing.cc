#include "main/flag_parsing.h"

#include <algorithm>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "converge/time_util.h"
#include "core/absl_compat.h"

// Numbers are int64 flags so that a negative value reaches the range checks
// and gets their message.

ABSL_FLAG(int64_t, sim_zones, 10, "Simulated zones (count).");
ABSL_FLAG(int64_t, sim_series_per_zone, 20,
          "Simulated series per zone (count).");
ABSL_FLAG(int64_t, sim_seed, 1, "Seed of the simulated values.");
ABSL_FLAG(absl::Duration, sim_duration, absl::Hours(1),
          "Simulated time to run (duration, e.g. 1h).");
ABSL_FLAG(std::string, sim_start, "",
          "Simulated start time (RFC 3339, e.g. 2026-06-01T00:00:00Z); empty "
          "means the current minute.");

namespace converge {
namespace {

// Returns the flag if `syntax` lists it, else nullptr.
absl::CommandLineFlag* FindListedFlag(const FlagSyntax& syntax,
                                      const std::string& name) {
  const bool listed =
      std::find(syntax.flag_names.begin(), syntax.flag_names.end(), name) !=
      syntax.flag_names.end();
  return listed ? absl::FindCommandLineFlag(name) : nullptr;
}

// Sets one flag from argv[*index], reading the value from the next argument
// when needed. Returns an empty string or the error.
std::string ApplyFlagArgument(int argc, char** argv, int* index,
                              const FlagSyntax& syntax,
                              FlagArguments* result) {
  const std::string_view argument = argv[*index];
  const std::string_view body =
      argument.substr(argument.starts_with("--") ? 2 : 1);
  std::string_view name = body;
  std::string value;
  bool has_value = false;
  if (const size_t equals = body.find('='); equals != std::string_view::npos) {
    name = body.substr(0, equals);
    value = std::string(body.substr(equals + 1));
    has_value = true;
  }

  std::string flag_name = absl::StrReplaceAll(ToAbsl(name), {{"-", "_"}});
  absl::CommandLineFlag* flag = FindListedFlag(syntax, flag_name);
  if (flag == nullptr && !has_value && absl::StartsWith(flag_name, "no")) {
    // --nosim-realtime
    std::string positive = flag_name.substr(2);
    absl::CommandLineFlag* negated = FindListedFlag(syntax, positive);
    if (negated != nullptr && negated->IsOfType<bool>()) {
      flag = negated;
      flag_name = positive;
      value = "false";
      has_value = true;
    }
  }
  if (flag == nullptr) {
    return absl::StrCat("unknown flag --", ToAbsl(name), "; run ",
                        ToAbsl(syntax.program),
                        " --help for the list of flags");
  }

  if (!has_value) {
    if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (*index + 1 < argc) {
      value = argv[++*index];
    } else {
      return absl::StrCat("missing value for --", DashedFlagName(flag_name),
                          "; write --", DashedFlagName(flag_name), "=VALUE");
    }
  }

  std::string error;
  if (!flag->ParseFrom(value, &error)) {
    return absl::StrCat("invalid --", DashedFlagName(flag_name), "=", value,
                        ": ", error, "; run ", ToAbsl(syntax.program),
                        " --help for the format");
  }
  result->set_flags.insert(flag_name);
  return "";
}

}  // namespace

FlagArguments ApplyFlagArguments(int argc, char** argv,
                                 const FlagSyntax& syntax) {
  FlagArguments result;
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (std::find(syntax.help_arguments.begin(), syntax.help_arguments.end(),
                  argument) != syntax.help_arguments.end()) {
      result.request = FlagArguments::Request::kPrintHelp;
      return result;
    }
    if (syntax.accepts_version && argument == "--version") {
      result.request = FlagArguments::Request::kPrintVersion;
      return result;
    }
    if (!argument.starts_with("-")) {
      result.error = absl::StrCat(
          "unexpected argument \"", ToAbsl(argument), "\": ",
          ToAbsl(syntax.program), " takes only flags; run ",
          ToAbsl(syntax.program), " --help for the list");
      return result;
    }
    result.error = ApplyFlagArgument(argc, argv, &i, syntax, &result);
    if (!result.error.empty()) return result;
  }
  return result;
}

std::string DashedFlagName(std::string_view name) {
  return absl::StrReplaceAll(ToAbsl(name), {{"_", "-"}});
}

std::string FlagHelpHeader(std::string_view program,
                           std::string_view description) {
  return absl::StrCat("Usage: ", ToAbsl(program), " [--flag=value ...]\n\n",
                      ToAbsl(description),
                      "Durations are written like 30s, 15m, 2h or 1h30m.\n");
}

std::string FlagHelpEntry(const char* name) {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  const std::string default_value = flag->DefaultValue();
  return absl::StrCat("  --", DashedFlagName(name), " (default: ",
                      default_value.empty() ? "\"\"" : default_value,
                      ")\n      ", flag->Help(), "\n");
}

void FlagChecker::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

void FlagChecker::Range(std::string_view flag, int64_t value, int64_t min,
                        int64_t max) {
  if (value < min || value > max) {
    Fail(absl::StrCat("invalid --", DashedFlagName(flag), "=", value,
                      ": must be an integer from ", min, " to ", max));
  }
}

void FlagChecker::Positive(std::string_view flag, absl::Duration value) {
  if (value <= absl::ZeroDuration()) {
    Fail(absl::StrCat("invalid --", DashedFlagName(flag), "=",
                      absl::FormatDuration(value),
                      ": must be a duration greater than 0, e.g. 30s or 15m"));
  }
}

void FlagChecker::NotNegative(std::string_view flag, absl::Duration value) {
  if (value < absl::ZeroDuration()) {
    Fail(absl::StrCat("invalid --", DashedFlagName(flag), "=",
                      absl::FormatDuration(value),
                      ": must be a duration of 0 or more, e.g. 2h"));
  }
}

void FlagChecker::OneOf(std::string_view flag, const std::string& value,
                        const std::vector<std::string>& allowed) {
  for (const std::string& candidate : allowed) {
    if (value == candidate) return;
  }
  Fail(absl::StrCat("invalid --", DashedFlagName(flag), "=", value,
                    ": must be one of ", absl::StrJoin(allowed, ", ")));
}

std::optional<absl::Time> FlagChecker::Rfc3339Time(std::string_view flag,
                                                   const std::string& value) {
  absl::StatusOr<absl::Time> parsed = ParseRfc3339(value);
  if (!parsed.ok()) {
    Fail(absl::StrCat("invalid --", DashedFlagName(flag), "=", value,
                      ": expected an RFC 3339 time such as "
                      "2026-06-01T00:00:00Z"));
    return std::nullopt;
  }
  return *parsed;
}

void FlagChecker::Validate(absl::FunctionRef<absl::Status()> validate) {
  if (!ok()) return;
  if (absl::Status status = validate(); !status.ok()) {
    Fail(std::string(status.message()));
  }
}

void FlagChecker::WindowTtlAboveLookback(absl::Duration window_ttl,
                                         absl::Duration lookback) {
  if (ok() && window_ttl <= lookback) {
    Fail(absl::StrCat(
        "invalid --window-ttl=", absl::FormatDuration(window_ttl),
        ": must be greater than --lookback=", absl::FormatDuration(lookback),
        ", or the live lane would refetch buckets whose windows are closed"));
  }
}

void BuildSimOptionsFromFlags(SimOptions* sim, FlagChecker& check) {
  const int64_t zones = absl::GetFlag(FLAGS_sim_zones);
  const int64_t series = absl::GetFlag(FLAGS_sim_series_per_zone);
  check.Range("sim_zones", zones, 1, 1'000'000);
  check.Range("sim_series_per_zone", series, 1, 100'000);
  check.Positive("sim_duration", absl::GetFlag(FLAGS_sim_duration));
  sim->zones = static_cast<uint32_t>(zones);
  sim->series_per_zone = static_cast<uint32_t>(series);
  sim->seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_sim_seed));
  sim->duration = absl::GetFlag(FLAGS_sim_duration);

  const std::string start = absl::GetFlag(FLAGS_sim_start);
  if (start.empty()) {
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    sim->start = absl::FromUnixMillis(now_ms - now_ms % 60'000);
  } else if (std::optional<absl::Time> parsed =
                 check.Rfc3339Time("sim_start", start)) {
    sim->start = *parsed;
  }
}

}  // namespace converge

#include "report/report_flags.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "converge/time_util.h"
#include "core/absl_compat.h"

// Numbers are int64 flags so that a negative value reaches the range checks
// below and gets their message.

ABSL_FLAG(std::string, replay_dir, "",
          "Folder of recorded fetches (*.json) to analyze; empty runs the "
          "built-in sim instead.");
ABSL_FLAG(int64_t, sim_zones, 10, "Simulated zones (count).");
ABSL_FLAG(int64_t, sim_series_per_zone, 20,
          "Simulated series per zone (count).");
ABSL_FLAG(int64_t, sim_seed, 1, "Seed of the simulated values.");
ABSL_FLAG(absl::Duration, sim_duration, absl::Hours(1),
          "Simulated time to run (duration, e.g. 1h).");
ABSL_FLAG(std::string, sim_start, "",
          "Simulated start time (RFC 3339, e.g. 2026-06-01T00:00:00Z); empty "
          "means the current minute.");
ABSL_FLAG(std::string, thresholds, "1,2,3,4,5,6",
          "Thresholds to compare, comma-separated (counts from 1 to 65535, "
          "at most 12 of them).");
ABSL_FLAG(absl::Duration, window_ttl, absl::Minutes(15),
          "Bucket age at which each engine force-flushes unsettled values "
          "(duration); must exceed --lookback.");
ABSL_FLAG(absl::Duration, lookback, absl::Minutes(10),
          "Width of the sim's live lane, re-fetched every 30 s tick "
          "(duration).");
ABSL_FLAG(std::string, output, "convergence.svg",
          "Path of the SVG report to write.");
ABSL_FLAG(std::string, output_csv, "",
          "Path of a CSV file with the report's numbers; empty writes none.");
ABSL_FLAG(std::string, log_level, "info",
          "Log level: trace, debug, info, warn, error or off.");

namespace converge {
namespace {

constexpr char kProgram[] = "converge-report";

// Flags in the order --help lists them.
constexpr const char* kFlags[] = {
    "replay_dir",  "sim_zones",  "sim_series_per_zone", "sim_seed",
    "sim_duration", "sim_start", "thresholds",          "window_ttl",
    "lookback",    "output",     "output_csv",          "log_level"};

constexpr const char* kSimFlags[] = {"sim_zones", "sim_series_per_zone",
                                     "sim_seed", "sim_duration", "sim_start"};

std::string Dashed(std::string_view name) {
  return absl::StrReplaceAll(ToAbsl(name), {{"_", "-"}});
}

bool IsReportFlag(std::string_view name) {
  return std::find(std::begin(kFlags), std::end(kFlags), name) !=
         std::end(kFlags);
}

// Sets flags from argv, recording the names set in `set_flags`. Returns an
// empty string or the first error.
std::string ApplyArguments(int argc, char** argv, ReportCommandLine* command,
                           std::set<std::string>* set_flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "--help" || argument == "-h") {
      command->action = ReportCommandLine::Action::kPrintHelp;
      return "";
    }
    if (!argument.starts_with("-")) {
      return absl::StrCat("unexpected argument \"", ToAbsl(argument), "\": ",
                          kProgram, " takes only flags; run ", kProgram,
                          " --help for the list");
    }

    // --name=value or --name value.
    const std::string_view body =
        argument.substr(argument.starts_with("--") ? 2 : 1);
    std::string_view name = body;
    std::string value;
    bool has_value = false;
    if (const size_t equals = body.find('=');
        equals != std::string_view::npos) {
      name = body.substr(0, equals);
      value = std::string(body.substr(equals + 1));
      has_value = true;
    }
    const std::string flag_name =
        absl::StrReplaceAll(ToAbsl(name), {{"-", "_"}});
    absl::CommandLineFlag* flag = IsReportFlag(flag_name)
                                      ? absl::FindCommandLineFlag(flag_name)
                                      : nullptr;
    if (flag == nullptr) {
      return absl::StrCat("unknown flag --", ToAbsl(name), "; run ", kProgram,
                          " --help for the list of flags");
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::StrCat("missing value for --", Dashed(flag_name),
                            "; write --", Dashed(flag_name), "=VALUE");
      }
      value = argv[++i];
    }

    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::StrCat("invalid --", Dashed(flag_name), "=", value, ": ",
                          error, "; run ", kProgram, " --help for the format");
    }
    set_flags->insert(flag_name);
  }
  return "";
}

// Collects the first validation error; later checks are skipped.
class Checker {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  void Range(const char* flag, int64_t value, int64_t min, int64_t max) {
    if (value < min || value > max) {
      Fail(absl::StrCat("invalid --", Dashed(flag), "=", value,
                        ": must be an integer from ", min, " to ", max));
    }
  }

  void Positive(const char* flag, absl::Duration value) {
    if (value <= absl::ZeroDuration()) {
      Fail(absl::StrCat("invalid --", Dashed(flag), "=",
                        absl::FormatDuration(value),
                        ": must be a duration greater than 0, e.g. 30s or 15m"));
    }
  }

 private:
  std::string error_;
};

// Parses --thresholds into ascending, distinct values.
std::vector<int> ParseThresholds(const std::string& text, Checker& check) {
  const std::string prefix = absl::StrCat("invalid --thresholds=", text, ": ");
  std::vector<int> thresholds;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    int64_t value = 0;
    if (!absl::SimpleAtoi(entry, &value)) {
      check.Fail(absl::StrCat(prefix, "\"", entry,
                              "\" is not an integer; write a comma-separated "
                              "list such as 1,2,3"));
      return {};
    }
    if (value < 1 || value > 65535) {
      check.Fail(absl::StrCat(prefix, value,
                              " is out of range; each threshold must be from "
                              "1 to 65535"));
      return {};
    }
    if (std::find(thresholds.begin(), thresholds.end(), value) !=
        thresholds.end()) {
      check.Fail(absl::StrCat(prefix, value, " is listed twice"));
      return {};
    }
    thresholds.push_back(static_cast<int>(value));
  }
  if (thresholds.size() > kMaxReportThresholds) {
    check.Fail(absl::StrCat(prefix, "lists ", thresholds.size(),
                            " thresholds; at most ", kMaxReportThresholds,
                            " fit in the chart"));
    return {};
  }
  std::sort(thresholds.begin(), thresholds.end());
  return thresholds;
}

void BuildSimOptions(const AnalysisOptions& analysis, SimOptions* sim,
                     Checker& check) {
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
  } else if (absl::StatusOr<absl::Time> parsed = ParseRfc3339(start);
             parsed.ok()) {
    sim->start = *parsed;
  } else {
    check.Fail(absl::StrCat("invalid --sim-start=", start,
                            ": expected an RFC 3339 time such as "
                            "2026-06-01T00:00:00Z"));
  }

  // The live lane only, because a backfill adds buckets first seen long
  // after they settled, which shows nothing about convergence.
  sim->lanes.lookback = analysis.lookback;
  sim->lanes.max_backfill = absl::ZeroDuration();
}

std::string BuildConfig(const std::set<std::string>& set_flags,
                        ReportConfig* config) {
  Checker check;

  // Source.
  config->replay.dir = absl::GetFlag(FLAGS_replay_dir);
  config->source = config->replay.dir.empty() ? "sim" : "replay";
  if (config->source == "replay") {
    for (const char* flag : kSimFlags) {
      if (set_flags.contains(flag)) {
        check.Fail(absl::StrCat("invalid --", Dashed(flag),
                                " with --replay-dir: the --sim-* flags set up "
                                "the built-in sim; drop one of them"));
      }
    }
  }

  // Engines.
  AnalysisOptions& analysis = config->analysis;
  analysis.thresholds =
      ParseThresholds(absl::GetFlag(FLAGS_thresholds), check);
  analysis.window_ttl = absl::GetFlag(FLAGS_window_ttl);
  analysis.lookback = absl::GetFlag(FLAGS_lookback);
  check.Positive("window_ttl", analysis.window_ttl);
  check.Positive("lookback", analysis.lookback);
  if (check.ok() && analysis.window_ttl <= analysis.lookback) {
    check.Fail(absl::StrCat(
        "invalid --window-ttl=", absl::FormatDuration(analysis.window_ttl),
        ": must be greater than --lookback=",
        absl::FormatDuration(analysis.lookback),
        ", or the live lane would refetch buckets whose windows are closed"));
  }
  if (config->source == "sim") BuildSimOptions(analysis, &config->sim, check);

  // Outputs.
  config->output_svg = absl::GetFlag(FLAGS_output);
  config->output_csv = absl::GetFlag(FLAGS_output_csv);
  if (config->output_svg.empty()) {
    check.Fail("missing --output: give the path of the SVG file to write, "
               "e.g. --output=convergence.svg");
  }
  config->log_level = absl::GetFlag(FLAGS_log_level);
  const std::vector<std::string> levels = {"trace", "debug", "info",
                                           "warn",  "error", "off"};
  if (std::find(levels.begin(), levels.end(), config->log_level) ==
      levels.end()) {
    check.Fail(absl::StrCat("invalid --log-level=", config->log_level,
                            ": must be one of ", absl::StrJoin(levels, ", ")));
  }

  // Whatever the flag checks missed, the components' own validation catches.
  if (check.ok()) {
    if (absl::Status status = ValidateAnalysisOptions(analysis); !status.ok()) {
      check.Fail(std::string(status.message()));
    }
  }
  if (check.ok() && config->source == "sim") {
    if (absl::Status status = ValidateSimOptions(config->sim); !status.ok()) {
      check.Fail(std::string(status.message()));
    }
  }
  return check.error();
}

}  // namespace

ReportCommandLine ParseReportCommandLine(int argc, char** argv) {
  ReportCommandLine command;
  std::set<std::string> set_flags;
  std::string error = ApplyArguments(argc, argv, &command, &set_flags);
  if (error.empty() && command.action == ReportCommandLine::Action::kRun) {
    error = BuildConfig(set_flags, &command.config);
  }
  if (!error.empty()) {
    command.action = ReportCommandLine::Action::kInvalid;
    command.error = std::move(error);
  }
  return command;
}

std::string ReportHelpText() {
  std::string text = absl::StrCat(
      "Usage: ", kProgram, " [--flag=value ...]\n\n",
      "Replays recorded fetches (--replay-dir) or runs the built-in sim, "
      "measures\nhow long each (series, bucket) value takes to settle, and "
      "runs one engine per\nthreshold over the same observations. Writes an "
      "SVG with two charts, an\noptional CSV, and a table on standard "
      "output.\nDurations are written like 30s, 15m, 2h or 1h30m.\n\n");
  for (const char* name : kFlags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    absl::StrAppend(&text, "  --", Dashed(name), " (default: ",
                    flag->DefaultValue().empty() ? "\"\""
                                                 : flag->DefaultValue(),
                    ")\n      ", flag->Help(), "\n");
  }
  return text;
}

std::string DescribeReportInput(const ReportConfig& config) {
  if (config.source == "replay") {
    return absl::StrCat("replay of ", config.replay.dir);
  }
  return absl::StrCat(
      "sim: ", config.sim.zones, " zones x ", config.sim.series_per_zone,
      " series, seed ", config.sim.seed, ", ",
      absl::FormatDuration(config.sim.duration), " from ",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", config.sim.start,
                       absl::UTCTimeZone()));
}

}  // namespace converge

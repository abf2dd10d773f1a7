#include "report/report_flags.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "main/flag_parsing.h"

// Numbers are int64 flags so that a negative value reaches the range checks
// below and gets their message.

ABSL_FLAG(std::string, replay_dir, "",
          "Folder of recorded fetches (*.json) to analyze; empty runs the "
          "built-in sim instead.");
// main/flag_parsing.cc defines the --sim-zones, --sim-series-per-zone,
// --sim-seed, --sim-duration and --sim-start flags, which converge-exporter
// shares.
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

// Parses --thresholds into ascending, distinct values.
std::vector<int> ParseThresholds(const std::string& text,
                                 FlagChecker& check) {
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
                     FlagChecker& check) {
  BuildSimOptionsFromFlags(sim, check);

  // The live lane only, because a backfill adds buckets first seen long
  // after they settled, which shows nothing about convergence.
  sim->lanes.lookback = analysis.lookback;
  sim->lanes.max_backfill = absl::ZeroDuration();
}

std::string BuildConfig(const std::set<std::string>& set_flags,
                        ReportConfig* config) {
  FlagChecker check;

  // Source.
  config->replay.dir = absl::GetFlag(FLAGS_replay_dir);
  config->source = config->replay.dir.empty() ? "sim" : "replay";
  if (config->source == "replay") {
    for (const char* flag : kSimFlags) {
      if (set_flags.contains(flag)) {
        check.Fail(absl::StrCat("invalid --", DashedFlagName(flag),
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
  check.WindowTtlAboveLookback(analysis.window_ttl, analysis.lookback);
  if (config->source == "sim") BuildSimOptions(analysis, &config->sim, check);

  // Outputs.
  config->output_svg = absl::GetFlag(FLAGS_output);
  config->output_csv = absl::GetFlag(FLAGS_output_csv);
  if (config->output_svg.empty()) {
    check.Fail("missing --output: give the path of the SVG file to write, "
               "e.g. --output=convergence.svg");
  }
  config->log_level = absl::GetFlag(FLAGS_log_level);
  check.OneOf("log_level", config->log_level,
              {"trace", "debug", "info", "warn", "error", "off"});

  // Whatever the flag checks missed, the components' own validation catches.
  check.Validate([&] { return ValidateAnalysisOptions(analysis); });
  if (config->source == "sim") {
    check.Validate([&] { return ValidateSimOptions(config->sim); });
  }
  return check.error();
}

}  // namespace

ReportCommandLine ParseReportCommandLine(int argc, char** argv) {
  const FlagSyntax syntax = {
      .program = kProgram,
      .flag_names = kFlags,
      .help_arguments = {"--help", "-h"},
  };
  FlagArguments arguments = ApplyFlagArguments(argc, argv, syntax);
  ReportCommandLine command;
  std::string error = std::move(arguments.error);
  if (arguments.request == FlagArguments::Request::kPrintHelp) {
    command.action = ReportCommandLine::Action::kPrintHelp;
  } else if (error.empty()) {
    error = BuildConfig(arguments.set_flags, &command.config);
  }
  if (!error.empty()) {
    command.action = ReportCommandLine::Action::kInvalid;
    command.error = std::move(error);
  }
  return command;
}

std::string ReportHelpText() {
  std::string text = FlagHelpHeader(
      kProgram,
      "Replays recorded fetches (--replay-dir) or runs the built-in sim, "
      "measures\nhow long each (series, bucket) value takes to settle, and "
      "runs one engine per\nthreshold over the same observations. Writes an "
      "SVG with two charts, an\noptional CSV, and a table on standard "
      "output.\n");
  text += "\n";
  for (const char* name : kFlags) absl::StrAppend(&text, FlagHelpEntry(name));
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

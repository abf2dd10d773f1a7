// Command-line flags of converge-report.
//
// Flags are abseil flags spelled with dashes (`--replay-dir=DIR`). The parser
// of main/flag_parsing.h, which converge-exporter uses too, reads argv so that
// every invalid value exits with status 2 and a message naming the flag, the
// value and what is allowed.

#ifndef CONVERGE_REPORT_REPORT_FLAGS_H_
#define CONVERGE_REPORT_REPORT_FLAGS_H_

#include <string>

#include "converge/sources.h"
#include "report/convergence.h"

namespace converge {

struct ReportConfig {
  std::string source;  // "replay" with --replay-dir, else "sim"
  ReplayOptions replay;
  SimOptions sim;
  AnalysisOptions analysis;
  std::string output_svg;
  std::string output_csv;  // empty: no CSV
  std::string log_level;
};

struct ReportCommandLine {
  enum class Action { kRun, kPrintHelp, kInvalid };
  Action action = Action::kRun;
  ReportConfig config;  // valid when action == kRun
  std::string error;    // set when action == kInvalid
};

// Reads `argv` and validates every value and the combinations between them.
ReportCommandLine ParseReportCommandLine(int argc, char** argv);

// The --help text: every flag with its unit, default and meaning.
std::string ReportHelpText();

// One line naming the input, e.g. "replay of DIR" or the sim's settings.
std::string DescribeReportInput(const ReportConfig& config);

}  // namespace converge

#endif  // CONVERGE_REPORT_REPORT_FLAGS_H_

// converge-report: turns recorded fetches or a sim run into a convergence
// report (an SVG, an optional CSV and a table on standard output).
//
// Exit status: 0 after writing the report, 1 when the input cannot be read,
// contains no observations or an output file cannot be written, and 2 for
// invalid flags.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "converge/sources.h"
#include "report/convergence.h"
#include "report/report_flags.h"
#include "report/report_tables.h"
#include "report/svg_report.h"

namespace converge {
namespace {

// Logs go to stderr, so that stdout carries only the table.
void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("converge-report");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
}

absl::StatusOr<std::unique_ptr<Source>> MakeSource(
    const ReportConfig& config) {
  if (config.source == "replay") return MakeReplaySource(config.replay);
  return MakeSimSource(config.sim);
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file.is_open()) {
    return absl::UnavailableError(
        absl::StrCat("failed to open ", path, " for writing"));
  }
  file << content;
  file.close();
  if (file.fail()) {
    return absl::UnavailableError(absl::StrCat("failed to write ", path));
  }
  return absl::OkStatus();
}

int Run(const ReportConfig& config) {
  absl::StatusOr<std::unique_ptr<Source>> source = MakeSource(config);
  if (!source.ok()) {
    spdlog::error("cannot start source {}: {}", config.source,
                  source.status().ToString());
    return 1;
  }

  absl::StatusOr<ConvergenceReport> report =
      AnalyzeSource(**source, config.analysis);
  if (!report.ok()) {
    spdlog::error("analysis failed: {}", report.status().ToString());
    return 1;
  }
  report->input = DescribeReportInput(config);
  if (report->observations == 0) {
    spdlog::error("{} produced no observations, so there is nothing to report",
                  report->input);
    return 1;
  }

  if (absl::Status status =
          WriteFile(config.output_svg, RenderConvergenceSvg(*report));
      !status.ok()) {
    spdlog::error("cannot write the SVG report: {}", status.ToString());
    return 1;
  }
  if (!config.output_csv.empty()) {
    if (absl::Status status =
            WriteFile(config.output_csv, FormatReportCsv(*report));
        !status.ok()) {
      spdlog::error("cannot write the CSV report: {}", status.ToString());
      return 1;
    }
  }
  std::cout << FormatReportTable(*report) << std::flush;
  spdlog::info("wrote {}{}", config.output_svg,
               config.output_csv.empty()
                   ? std::string()
                   : absl::StrCat(" and ", config.output_csv));
  return 0;
}

}  // namespace
}  // namespace converge

int main(int argc, char** argv) {
  const converge::ReportCommandLine command =
      converge::ParseReportCommandLine(argc, argv);
  switch (command.action) {
    case converge::ReportCommandLine::Action::kPrintHelp:
      std::cout << converge::ReportHelpText();
      return 0;
    case converge::ReportCommandLine::Action::kInvalid:
      std::cerr << "converge-report: " << command.error << "\n";
      return 2;
    case converge::ReportCommandLine::Action::kRun:
      break;
  }
  converge::SetUpLogging(command.config.log_level);
  return converge::Run(command.config);
}

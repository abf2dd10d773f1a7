// Command-line flags of converge-exporter and their translation into the
// options of the pipeline, the source and the sink.
//
// Flags are abseil flags, spelled with dashes on the command line
// (`--window-ttl=15m`). The parser of main/flag_parsing.h, rather than
// absl::ParseCommandLine, reads argv so that every invalid value exits with
// status 2 and a message naming the flag, the value and what is allowed.

#ifndef CONVERGE_MAIN_FLAGS_H_
#define CONVERGE_MAIN_FLAGS_H_

#include <string>

#include "converge/pipeline.h"
#include "converge/sinks.h"
#include "converge/sources.h"

namespace converge {

struct ExporterConfig {
  std::string source;  // "sim", "replay" or "cloudflare"
  ReplayOptions replay;
  SimOptions sim;
  CloudflareOptions cloudflare;
  std::string sink;  // "file", "remote-write" or "null"
  FileSinkOptions file_sink;
  RemoteWriteOptions remote_write;
  PipelineOptions pipeline;
  std::string listen;              // empty: no listener
  std::string final_metrics_file;  // empty: none
  std::string log_level;
  std::string log_format;          // "text" or "json"
};

struct CommandLine {
  enum class Action { kRun, kPrintHelp, kPrintVersion, kInvalid };
  Action action = Action::kRun;
  ExporterConfig config;  // valid when action == kRun
  std::string error;      // set when action == kInvalid
};

// Reads `argv`, validates every value and the combinations between them.
CommandLine ParseCommandLine(int argc, char** argv);

// The --help text: every flag with its unit, default and meaning.
std::string HelpText();

// The effective configuration in one line for the start log: every flag of
// the --help list with its value, secrets replaced by whether they are set.
std::string DescribeConfig();

}  // namespace converge

#endif  // CONVERGE_MAIN_FLAGS_H_

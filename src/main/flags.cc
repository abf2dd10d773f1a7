#include "main/flags.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "converge/time_util.h"
#include "core/absl_compat.h"

// Numbers are int64 flags even where only positive values make sense, so that
// a negative value reaches the range checks below and gets their message.

ABSL_FLAG(std::string, source, "sim", "Data source: sim or replay.");
ABSL_FLAG(std::string, replay_dir, "",
          "Folder of recorded fetches (*.json) for --source=replay.");
ABSL_FLAG(int64_t, sim_zones, 10, "Simulated zones (count).");
ABSL_FLAG(int64_t, sim_series_per_zone, 20,
          "Simulated series per zone (count).");
ABSL_FLAG(int64_t, sim_seed, 1, "Seed of the simulated values.");
ABSL_FLAG(absl::Duration, sim_duration, absl::Hours(1),
          "Simulated time to run (duration, e.g. 1h).");
ABSL_FLAG(std::string, sim_start, "",
          "Simulated start time (RFC 3339, e.g. 2026-06-01T00:00:00Z); empty "
          "means the current minute.");
ABSL_FLAG(bool, sim_realtime, false,
          "Pace simulated ticks to the wall clock instead of running as fast "
          "as possible.");

ABSL_FLAG(std::string, sink, "file", "Destination: file, remote-write or null.");
ABSL_FLAG(std::string, sink_file, "-",
          "Output path of --sink=file; - writes to standard output.");
ABSL_FLAG(std::string, sink_url, "",
          "Remote write URL of --sink=remote-write, e.g. "
          "http://127.0.0.1:8428/api/v1/write.");
ABSL_FLAG(absl::Duration, sink_timeout, absl::Seconds(30),
          "Timeout of one remote write request (duration).");
ABSL_FLAG(int64_t, batch_max_samples, 5000,
          "Samples per pushed batch at most (count).");
ABSL_FLAG(int64_t, batch_max_bytes, 4 << 20,
          "Estimated uncompressed bytes per pushed batch at most (bytes).");
ABSL_FLAG(absl::Duration, flush_interval, absl::Seconds(1),
          "Longest time a sample waits in an open batch (duration).");
ABSL_FLAG(absl::Duration, sink_retry_min, absl::Seconds(1),
          "First retry delay after a failed push (duration); doubles up to "
          "--sink-retry-max.");
ABSL_FLAG(absl::Duration, sink_retry_max, absl::Minutes(1),
          "Longest retry delay after failed pushes (duration).");
ABSL_FLAG(int64_t, sink_queue_max_samples, 1 << 16,
          "Samples waiting for the sink at most (count); when full, shards "
          "and fetchers wait.");
ABSL_FLAG(bool, sink_coalesce_corrections, true,
          "With --sink=remote-write, send only the latest value when a "
          "correction arrives while the earlier value still waits in the "
          "open batch. The file and null sinks keep every sample.");
ABSL_FLAG(int64_t, shard_queue_max_observations, 1 << 16,
          "Observations waiting for each shard at most (count).");

ABSL_FLAG(int64_t, shards, 2,
          "Shard threads (count); each series is owned by one shard.");
ABSL_FLAG(int64_t, fetchers, 2, "Fetcher threads (count).");
ABSL_FLAG(int64_t, threshold, 3,
          "Identical observations in a row before a value is pushed (count); "
          "1 pushes every new value at once.");
ABSL_FLAG(absl::Duration, window_ttl, absl::Minutes(15),
          "Age of a bucket at which its unsettled values are force-flushed "
          "(duration); must exceed --lookback.");
ABSL_FLAG(absl::Duration, lookback, absl::Minutes(10),
          "Width of the live lane re-fetched every tick (duration).");
ABSL_FLAG(absl::Duration, poll_interval, absl::Seconds(30),
          "Time between ticks (duration).");
ABSL_FLAG(absl::Duration, max_backfill, absl::Hours(2),
          "How far before the start the backfill lane reaches (duration); 0 "
          "disables backfill.");
ABSL_FLAG(absl::Duration, backfill_chunk, absl::Minutes(10),
          "Time range of one backfill fetch (duration).");
ABSL_FLAG(int64_t, backfill_calls_per_tick, 1,
          "Backfill fetch calls per tick at most (count); 0 pauses backfill.");
ABSL_FLAG(absl::Duration, shutdown_timeout, absl::Seconds(30),
          "After a stop, how long delivery may continue before the rest is "
          "counted as undelivered (duration).");
ABSL_FLAG(std::string, log_level, "info",
          "Log level: trace, debug, info, warn, error or off.");

namespace converge {
namespace {

constexpr char kProgram[] = "converge-exporter";

// Flags in the order --help lists them, by section.
struct HelpSection {
  const char* title;
  std::vector<const char*> flags;
};

const std::vector<HelpSection>& HelpSections() {
  static const auto* sections = new std::vector<HelpSection>{
      {"Source",
       {"source", "replay_dir", "sim_zones", "sim_series_per_zone",
        "sim_seed", "sim_duration", "sim_start", "sim_realtime"}},
      {"Stabilization",
       {"threshold", "window_ttl", "lookback", "poll_interval"}},
      {"Backfill",
       {"max_backfill", "backfill_chunk", "backfill_calls_per_tick"}},
      {"Pipeline",
       {"shards", "fetchers", "shard_queue_max_observations",
        "sink_queue_max_samples", "shutdown_timeout"}},
      {"Sink",
       {"sink", "sink_file", "sink_url", "sink_timeout", "batch_max_samples",
        "batch_max_bytes", "flush_interval", "sink_retry_min",
        "sink_retry_max", "sink_coalesce_corrections"}},
      {"Logging", {"log_level"}},
  };
  return *sections;
}

std::string Dashed(std::string_view name) {
  return absl::StrReplaceAll(ToAbsl(name), {{"_", "-"}});
}

std::string Underscored(std::string_view name) {
  return absl::StrReplaceAll(ToAbsl(name), {{"-", "_"}});
}

bool IsOurs(std::string_view name) {
  for (const HelpSection& section : HelpSections()) {
    for (const char* flag : section.flags) {
      if (name == flag) return true;
    }
  }
  return false;
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

  void NotNegative(const char* flag, absl::Duration value) {
    if (value < absl::ZeroDuration()) {
      Fail(absl::StrCat("invalid --", Dashed(flag), "=",
                        absl::FormatDuration(value),
                        ": must be a duration of 0 or more, e.g. 2h"));
    }
  }

  void OneOf(const char* flag, const std::string& value,
             const std::vector<std::string>& allowed) {
    for (const std::string& candidate : allowed) {
      if (value == candidate) return;
    }
    Fail(absl::StrCat("invalid --", Dashed(flag), "=", value,
                      ": must be one of ", absl::StrJoin(allowed, ", ")));
  }

 private:
  std::string error_;
};

// Sets flags from argv. Returns an empty string or the first error.
std::string ApplyArguments(int argc, char** argv, CommandLine* command_line) {
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    if (argument == "--help" || argument == "-h" || argument == "--helpfull") {
      command_line->action = CommandLine::Action::kPrintHelp;
      return "";
    }
    if (argument == "--version") {
      command_line->action = CommandLine::Action::kPrintVersion;
      return "";
    }
    if (!absl::StartsWith(ToAbsl(argument), "-")) {
      return absl::StrCat("unexpected argument \"", ToAbsl(argument),
                          "\": converge-exporter takes only flags; run ",
                          kProgram, " --help for the list");
    }

    // Accept --name=value, --name value, -name=value, --name and --noname
    // for booleans.
    std::string_view body = argument.substr(argument.starts_with("--") ? 2 : 1);
    std::string_view name = body;
    std::string value;
    bool has_value = false;
    if (size_t equals = body.find('='); equals != std::string_view::npos) {
      name = body.substr(0, equals);
      value = std::string(body.substr(equals + 1));
      has_value = true;
    }

    std::string flag_name = Underscored(name);
    absl::CommandLineFlag* flag =
        IsOurs(flag_name) ? absl::FindCommandLineFlag(flag_name) : nullptr;
    if (flag == nullptr && !has_value && absl::StartsWith(flag_name, "no")) {
      // --nosim-realtime
      std::string positive = flag_name.substr(2);
      absl::CommandLineFlag* negated =
          IsOurs(positive) ? absl::FindCommandLineFlag(positive) : nullptr;
      if (negated != nullptr && negated->IsOfType<bool>()) {
        flag = negated;
        flag_name = positive;
        value = "false";
        has_value = true;
      }
    }
    if (flag == nullptr) {
      return absl::StrCat("unknown flag --", ToAbsl(name), "; run ", kProgram,
                          " --help for the list of flags");
    }

    if (!has_value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::StrCat("missing value for --", Dashed(flag_name),
                            "; write --", Dashed(flag_name), "=VALUE");
      }
    }

    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::StrCat("invalid --", Dashed(flag_name), "=", value, ": ",
                          error, "; run ", kProgram, " --help for the format");
    }
  }
  return "";
}

// Builds the options from the flags and checks them. Returns the first error.
std::string BuildConfig(ExporterConfig* config) {
  Checker check;

  // Source.
  config->source = absl::GetFlag(FLAGS_source);
  check.OneOf("source", config->source, {"sim", "replay"});
  config->replay.dir = absl::GetFlag(FLAGS_replay_dir);
  if (config->source == "replay" && config->replay.dir.empty()) {
    check.Fail("missing --replay-dir: --source=replay needs the folder of "
               "recorded fetches, e.g. --replay-dir=recordings/");
  }
  const int64_t zones = absl::GetFlag(FLAGS_sim_zones);
  const int64_t series = absl::GetFlag(FLAGS_sim_series_per_zone);
  check.Range("sim_zones", zones, 1, 1'000'000);
  check.Range("sim_series_per_zone", series, 1, 100'000);
  check.Positive("sim_duration", absl::GetFlag(FLAGS_sim_duration));
  SimOptions& sim = config->sim;
  sim.zones = static_cast<uint32_t>(zones);
  sim.series_per_zone = static_cast<uint32_t>(series);
  sim.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_sim_seed));
  sim.duration = absl::GetFlag(FLAGS_sim_duration);
  sim.realtime = absl::GetFlag(FLAGS_sim_realtime);
  const std::string start = absl::GetFlag(FLAGS_sim_start);
  if (start.empty()) {
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    sim.start = absl::FromUnixMillis(now_ms - now_ms % 60'000);
  } else if (absl::StatusOr<absl::Time> parsed = ParseRfc3339(start);
             parsed.ok()) {
    sim.start = *parsed;
  } else {
    check.Fail(absl::StrCat("invalid --sim-start=", start,
                            ": expected an RFC 3339 time such as "
                            "2026-06-01T00:00:00Z"));
  }

  // Stabilization and lanes.
  const int64_t threshold = absl::GetFlag(FLAGS_threshold);
  check.Range("threshold", threshold, 1, 65535);
  check.Positive("lookback", absl::GetFlag(FLAGS_lookback));
  check.Positive("window_ttl", absl::GetFlag(FLAGS_window_ttl));
  check.Positive("poll_interval", absl::GetFlag(FLAGS_poll_interval));
  check.NotNegative("max_backfill", absl::GetFlag(FLAGS_max_backfill));
  check.Positive("backfill_chunk", absl::GetFlag(FLAGS_backfill_chunk));
  check.Range("backfill_calls_per_tick",
              absl::GetFlag(FLAGS_backfill_calls_per_tick), 0, 1'000'000);
  if (check.ok() &&
      absl::GetFlag(FLAGS_window_ttl) <= absl::GetFlag(FLAGS_lookback)) {
    check.Fail(absl::StrCat(
        "invalid --window-ttl=",
        absl::FormatDuration(absl::GetFlag(FLAGS_window_ttl)),
        ": must be greater than --lookback=",
        absl::FormatDuration(absl::GetFlag(FLAGS_lookback)),
        ", or the live lane would refetch buckets whose windows are closed"));
  }
  LaneOptions& lanes = sim.lanes;
  lanes.poll_interval = absl::GetFlag(FLAGS_poll_interval);
  lanes.lookback = absl::GetFlag(FLAGS_lookback);
  lanes.max_backfill = absl::GetFlag(FLAGS_max_backfill);
  lanes.backfill_chunk = absl::GetFlag(FLAGS_backfill_chunk);
  lanes.backfill_calls_per_tick =
      static_cast<int>(absl::GetFlag(FLAGS_backfill_calls_per_tick));

  // Pipeline.
  PipelineOptions& pipeline = config->pipeline;
  check.Range("shards", absl::GetFlag(FLAGS_shards), 1, 256);
  check.Range("fetchers", absl::GetFlag(FLAGS_fetchers), 1, 256);
  check.Range("shard_queue_max_observations",
              absl::GetFlag(FLAGS_shard_queue_max_observations), 1024,
              int64_t{1} << 30);
  check.Range("sink_queue_max_samples",
              absl::GetFlag(FLAGS_sink_queue_max_samples), 1024,
              int64_t{1} << 30);
  check.Positive("shutdown_timeout", absl::GetFlag(FLAGS_shutdown_timeout));
  pipeline.engine.threshold = static_cast<int>(threshold);
  pipeline.engine.window_ttl = absl::GetFlag(FLAGS_window_ttl);
  pipeline.engine.lookback = absl::GetFlag(FLAGS_lookback);
  pipeline.shards = static_cast<int>(absl::GetFlag(FLAGS_shards));
  pipeline.fetchers = static_cast<int>(absl::GetFlag(FLAGS_fetchers));
  pipeline.shard_queue_capacity =
      static_cast<size_t>(absl::GetFlag(FLAGS_shard_queue_max_observations));
  pipeline.sink_queue_capacity =
      static_cast<size_t>(absl::GetFlag(FLAGS_sink_queue_max_samples));
  pipeline.shutdown_timeout = absl::GetFlag(FLAGS_shutdown_timeout);

  // Sink.
  config->sink = absl::GetFlag(FLAGS_sink);
  check.OneOf("sink", config->sink, {"file", "remote-write", "null"});
  config->file_sink.path = absl::GetFlag(FLAGS_sink_file);
  if (config->sink == "file" && config->file_sink.path.empty()) {
    check.Fail("missing --sink-file: give a path, or - for standard output");
  }
  config->remote_write.url = absl::GetFlag(FLAGS_sink_url);
  if (config->sink == "remote-write" && config->remote_write.url.empty()) {
    check.Fail("missing --sink-url: --sink=remote-write needs the receiver's "
               "URL, e.g. --sink-url=http://127.0.0.1:8428/api/v1/write");
  }
  check.Positive("sink_timeout", absl::GetFlag(FLAGS_sink_timeout));
  check.Range("batch_max_samples", absl::GetFlag(FLAGS_batch_max_samples), 1,
              1'000'000);
  check.Range("batch_max_bytes", absl::GetFlag(FLAGS_batch_max_bytes), 1024,
              int64_t{1} << 30);
  check.Positive("flush_interval", absl::GetFlag(FLAGS_flush_interval));
  check.Positive("sink_retry_min", absl::GetFlag(FLAGS_sink_retry_min));
  check.Positive("sink_retry_max", absl::GetFlag(FLAGS_sink_retry_max));
  if (check.ok() && absl::GetFlag(FLAGS_sink_retry_max) <
                        absl::GetFlag(FLAGS_sink_retry_min)) {
    check.Fail(absl::StrCat(
        "invalid --sink-retry-max=",
        absl::FormatDuration(absl::GetFlag(FLAGS_sink_retry_max)),
        ": must be at least --sink-retry-min=",
        absl::FormatDuration(absl::GetFlag(FLAGS_sink_retry_min))));
  }
  config->remote_write.timeout = absl::GetFlag(FLAGS_sink_timeout);
  pipeline.batch_max_samples =
      static_cast<size_t>(absl::GetFlag(FLAGS_batch_max_samples));
  pipeline.batch_max_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_batch_max_bytes));
  pipeline.flush_interval = absl::GetFlag(FLAGS_flush_interval);
  pipeline.retry_min = absl::GetFlag(FLAGS_sink_retry_min);
  pipeline.retry_max = absl::GetFlag(FLAGS_sink_retry_max);
  pipeline.coalesce_corrections =
      config->sink == "remote-write" &&
      absl::GetFlag(FLAGS_sink_coalesce_corrections);

  config->log_level = absl::GetFlag(FLAGS_log_level);
  check.OneOf("log_level", config->log_level,
              {"trace", "debug", "info", "warn", "error", "off"});

  // Whatever the flag checks missed, the components' own validation catches.
  if (check.ok()) {
    if (absl::Status status = ValidatePipelineOptions(pipeline); !status.ok()) {
      check.Fail(std::string(status.message()));
    }
  }
  if (check.ok() && config->source == "sim") {
    if (absl::Status status = ValidateSimOptions(sim); !status.ok()) {
      check.Fail(std::string(status.message()));
    }
  }
  return check.error();
}

}  // namespace

CommandLine ParseCommandLine(int argc, char** argv) {
  CommandLine command_line;
  std::string error = ApplyArguments(argc, argv, &command_line);
  if (error.empty() && command_line.action == CommandLine::Action::kRun) {
    error = BuildConfig(&command_line.config);
  }
  if (!error.empty()) {
    command_line.action = CommandLine::Action::kInvalid;
    command_line.error = std::move(error);
  }
  return command_line;
}

std::string HelpText() {
  std::string text = absl::StrCat(
      "Usage: ", kProgram, " [--flag=value ...]\n\n",
      "Fetches still-settling per-minute analytics again and again, pushes "
      "each\n(series, bucket) value once it stops changing, stamped with the "
      "bucket's\nown time, and force-flushes values that never settle.\n"
      "Durations are written like 30s, 15m, 2h or 1h30m.\n");
  for (const HelpSection& section : HelpSections()) {
    absl::StrAppend(&text, "\n", section.title, ":\n");
    for (const char* name : section.flags) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      absl::StrAppend(&text, "  --", Dashed(name), " (default: ",
                      flag->DefaultValue().empty() ? "\"\""
                                                   : flag->DefaultValue(),
                      ")\n      ", flag->Help(), "\n");
    }
  }
  return text;
}

}  // namespace converge

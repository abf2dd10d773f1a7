#include "main/flags.h"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/secret_file.h"
#include "main/flag_parsing.h"
#include "server/http_server.h"

// Numbers are int64 flags even where only positive values make sense, so that
// a negative value reaches the range checks below and gets their message.

ABSL_FLAG(std::string, source, "sim",
          "Data source: sim, replay or cloudflare.");
ABSL_FLAG(std::string, replay_dir, "",
          "Folder of recorded fetches (*.json) for --source=replay.");
// main/flag_parsing.cc defines the --sim-zones, --sim-series-per-zone,
// --sim-seed, --sim-duration and --sim-start flags, which converge-report
// shares.
ABSL_FLAG(bool, sim_realtime, false,
          "Pace simulated ticks to the wall clock instead of running as fast "
          "as possible.");

ABSL_FLAG(std::string, cf_api_url, converge::kCloudflareGraphqlUrl,
          "GraphQL endpoint of --source=cloudflare (URL); https, or http on "
          "127.0.0.1 for a local fake.");
ABSL_FLAG(std::string, cf_rest_url, converge::kCloudflareRestUrl,
          "Base of the REST API that lists zones (URL).");
ABSL_FLAG(std::string, cf_api_token_file, "",
          "File holding the API token (path); empty reads CF_API_TOKEN, or "
          "CF_API_EMAIL with CF_API_KEY. Never pass a token as a flag.");
ABSL_FLAG(std::string, zones, "",
          "Zone IDs to query, comma-separated; empty lists every zone the "
          "token can read.");
ABSL_FLAG(std::string, exclude_zones, "",
          "Zone IDs or names never to query, comma-separated.");
ABSL_FLAG(std::string, metrics_allow, "",
          "Metric names to export, comma-separated; empty allows all. A "
          "dataset with no metric left is not queried.");
ABSL_FLAG(std::string, metrics_deny, "",
          "Metric names not to export, comma-separated; wins over "
          "--metrics-allow.");
ABSL_FLAG(absl::Duration, cf_timeout, absl::Seconds(30),
          "Timeout of one Cloudflare API request (duration).");
ABSL_FLAG(int64_t, cf_zones_per_query, 10,
          "Zones per GraphQL query (count, 1 to 10).");
ABSL_FLAG(int64_t, cf_row_limit, 9999,
          "Rows per zone per query (count, 1 to 9999); a response at the "
          "limit is fetched again in halves of the time range.");
ABSL_FLAG(int64_t, cf_query_budget, 300,
          "GraphQL queries the token may send per 5 minutes (count); sets "
          "the start-up budget check and the backfill pace.");
ABSL_FLAG(absl::Duration, cf_rate_limit_backoff, absl::Minutes(5),
          "Pause of every fetcher after a rate-limit response without "
          "Retry-After (duration).");
ABSL_FLAG(absl::Duration, cf_zone_error_backoff, absl::Hours(1),
          "How long a zone is left out of a dataset after a permission or "
          "plan error naming it (duration).");
ABSL_FLAG(int64_t, cluster_members, 1,
          "Exporter instances sharing the zones (count); each zone is owned "
          "by exactly one.");
ABSL_FLAG(int64_t, cluster_member_index, 0,
          "This instance's index among --cluster-members (0 to members - 1).");
ABSL_FLAG(std::string, cf_clock_start, "",
          "For tests and demos against a fake API: simulated start time (RFC "
          "3339); ticks then run as fast as possible. Empty uses the wall "
          "clock.");
ABSL_FLAG(absl::Duration, cf_clock_duration, absl::ZeroDuration(),
          "Simulated time to run with --cf-clock-start (duration).");

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
          "Observations waiting for each shard at most, rounded up to whole "
          "messages of 4096 (count).");

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
ABSL_FLAG(std::string, sink_bearer_token_file, "",
          "File holding a bearer token for the receiver (path). Basic auth "
          "comes from CONVERGE_SINK_USERNAME and CONVERGE_SINK_PASSWORD.");
ABSL_FLAG(std::string, sink_ca_file, "",
          "CA bundle to verify the receiver's TLS certificate with (path); "
          "empty uses the system's.");
ABSL_FLAG(bool, sink_insecure_skip_verify, false,
          "Do not verify the receiver's TLS certificate. Logged as a warning; "
          "for tests only.");

ABSL_FLAG(std::string, listen, "127.0.0.1:9464",
          "Address of the /metrics, /healthz and /ready listener (HOST:PORT; "
          "port 0 picks a free one; empty disables it). Listening on all "
          "interfaces (0.0.0.0) is an explicit choice.");
ABSL_FLAG(std::string, final_metrics_file, "",
          "Write the /metrics text once more at exit to this file (path), for "
          "runs that end by themselves.");

ABSL_FLAG(std::string, log_level, "info",
          "Log level: trace, debug, info, warn, error or off.");
ABSL_FLAG(std::string, log_format, "text", "Log format: text or json.");

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
      {"Cloudflare",
       {"cf_api_url", "cf_rest_url", "cf_api_token_file", "zones",
        "exclude_zones", "metrics_allow", "metrics_deny", "cf_timeout",
        "cf_zones_per_query", "cf_row_limit", "cf_query_budget",
        "cf_rate_limit_backoff", "cf_zone_error_backoff", "cluster_members",
        "cluster_member_index", "cf_clock_start", "cf_clock_duration"}},
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
        "sink_retry_max", "sink_coalesce_corrections",
        "sink_bearer_token_file", "sink_ca_file",
        "sink_insecure_skip_verify"}},
      {"Operating", {"listen", "final_metrics_file", "log_level", "log_format"}},
  };
  return *sections;
}

// Returns every flag of HelpSections(), which are the flags argv may set.
std::span<const char* const> FlagNames() {
  static const auto* names = [] {
    auto* all = new std::vector<const char*>;
    for (const HelpSection& section : HelpSections()) {
      all->insert(all->end(), section.flags.begin(), section.flags.end());
    }
    return all;
  }();
  return *names;
}

// Splits a comma-separated flag value, dropping blanks around and between
// entries.
std::vector<std::string> CommaList(const std::string& value) {
  std::vector<std::string> entries;
  for (absl::string_view entry : absl::StrSplit(value, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (!entry.empty()) entries.emplace_back(entry);
  }
  return entries;
}

// Fills the options of --source=cloudflare from its flags. Credentials are
// read only when the source is selected (`selected`), so other sources never
// touch the token.
void BuildCloudflareOptions(bool selected, const LaneOptions& lanes,
                            CloudflareOptions* options, FlagChecker& check) {
  options->graphql_url = absl::GetFlag(FLAGS_cf_api_url);
  options->rest_url = absl::GetFlag(FLAGS_cf_rest_url);
  options->zones = CommaList(absl::GetFlag(FLAGS_zones));
  options->exclude_zones = CommaList(absl::GetFlag(FLAGS_exclude_zones));
  options->metrics_allow = CommaList(absl::GetFlag(FLAGS_metrics_allow));
  options->metrics_deny = CommaList(absl::GetFlag(FLAGS_metrics_deny));
  options->lanes = lanes;

  // Numbers and durations.
  const int64_t zones_per_query = absl::GetFlag(FLAGS_cf_zones_per_query);
  const int64_t row_limit = absl::GetFlag(FLAGS_cf_row_limit);
  const int64_t budget = absl::GetFlag(FLAGS_cf_query_budget);
  const int64_t members = absl::GetFlag(FLAGS_cluster_members);
  const int64_t member_index = absl::GetFlag(FLAGS_cluster_member_index);
  check.Range("cf_zones_per_query", zones_per_query, 1, 10);
  check.Range("cf_row_limit", row_limit, 1, 9999);
  check.Range("cf_query_budget", budget, 1, 1'000'000);
  check.Range("cluster_members", members, 1, 100'000);
  if (check.ok()) {
    check.Range("cluster_member_index", member_index, 0, members - 1);
  }
  check.Positive("cf_timeout", absl::GetFlag(FLAGS_cf_timeout));
  check.Positive("cf_rate_limit_backoff",
                 absl::GetFlag(FLAGS_cf_rate_limit_backoff));
  check.Positive("cf_zone_error_backoff",
                 absl::GetFlag(FLAGS_cf_zone_error_backoff));
  options->zones_per_query = static_cast<uint32_t>(zones_per_query);
  options->row_limit = static_cast<uint32_t>(row_limit);
  options->query_budget = static_cast<uint32_t>(budget);
  options->cluster_members = static_cast<uint32_t>(members);
  options->cluster_member_index = static_cast<uint32_t>(member_index);
  options->timeout = absl::GetFlag(FLAGS_cf_timeout);
  options->rate_limit_backoff = absl::GetFlag(FLAGS_cf_rate_limit_backoff);
  options->zone_error_backoff = absl::GetFlag(FLAGS_cf_zone_error_backoff);

  // Simulated clock.
  const std::string clock_start = absl::GetFlag(FLAGS_cf_clock_start);
  const absl::Duration clock_duration = absl::GetFlag(FLAGS_cf_clock_duration);
  if (!clock_start.empty()) {
    if (std::optional<absl::Time> parsed =
            check.Rfc3339Time("cf_clock_start", clock_start)) {
      options->clock_start = *parsed;
    }
    check.Positive("cf_clock_duration", clock_duration);
  } else if (clock_duration != absl::ZeroDuration()) {
    check.Fail(absl::StrCat(
        "invalid --cf-clock-duration=", absl::FormatDuration(clock_duration),
        ": it needs --cf-clock-start, the simulated time to start from"));
  }
  options->clock_duration = clock_duration;

  // Credentials, from a file or the environment only.
  if (selected && check.ok()) {
    absl::StatusOr<CloudflareCredentials> credentials =
        LoadCloudflareCredentials(absl::GetFlag(FLAGS_cf_api_token_file));
    if (credentials.ok()) {
      options->credentials = *std::move(credentials);
    } else {
      check.Fail(std::string(credentials.status().message()));
    }
  }
}

// Builds the options from the flags and checks them. Returns the first error.
std::string BuildConfig(ExporterConfig* config) {
  FlagChecker check;

  // Source.
  config->source = absl::GetFlag(FLAGS_source);
  check.OneOf("source", config->source, {"sim", "replay", "cloudflare"});
  config->replay.dir = absl::GetFlag(FLAGS_replay_dir);
  if (config->source == "replay" && config->replay.dir.empty()) {
    check.Fail("missing --replay-dir: --source=replay needs the folder of "
               "recorded fetches, e.g. --replay-dir=recordings/");
  }
  SimOptions& sim = config->sim;
  BuildSimOptionsFromFlags(&sim, check);
  sim.realtime = absl::GetFlag(FLAGS_sim_realtime);

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
  check.WindowTtlAboveLookback(absl::GetFlag(FLAGS_window_ttl),
                               absl::GetFlag(FLAGS_lookback));
  LaneOptions& lanes = sim.lanes;
  lanes.poll_interval = absl::GetFlag(FLAGS_poll_interval);
  lanes.lookback = absl::GetFlag(FLAGS_lookback);
  lanes.max_backfill = absl::GetFlag(FLAGS_max_backfill);
  lanes.backfill_chunk = absl::GetFlag(FLAGS_backfill_chunk);
  lanes.backfill_calls_per_tick =
      static_cast<int>(absl::GetFlag(FLAGS_backfill_calls_per_tick));
  BuildCloudflareOptions(config->source == "cloudflare", lanes,
                         &config->cloudflare, check);

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

  // Sink credentials and TLS: secrets come from a file or the environment.
  config->remote_write.ca_file = absl::GetFlag(FLAGS_sink_ca_file);
  config->remote_write.insecure_skip_verify =
      absl::GetFlag(FLAGS_sink_insecure_skip_verify);
  if (const std::string token_file = absl::GetFlag(FLAGS_sink_bearer_token_file);
      !token_file.empty()) {
    absl::StatusOr<std::string> token =
        ReadSecretFile(token_file, "--sink-bearer-token-file");
    if (token.ok()) {
      config->remote_write.bearer_token = *token;
    } else {
      check.Fail(std::string(token.status().message()));
    }
  }
  if (const char* username = std::getenv("CONVERGE_SINK_USERNAME")) {
    config->remote_write.basic_auth_username = username;
    const char* password = std::getenv("CONVERGE_SINK_PASSWORD");
    config->remote_write.basic_auth_password = password ? password : "";
  }
  if (!config->remote_write.bearer_token.empty() &&
      !config->remote_write.basic_auth_username.empty()) {
    check.Fail(
        "both --sink-bearer-token-file and CONVERGE_SINK_USERNAME are set; "
        "use one way to authenticate to the receiver");
  }

  // Operating.
  config->listen = absl::GetFlag(FLAGS_listen);
  if (!config->listen.empty()) {
    if (absl::Status status = ParseListenAddress(config->listen).status();
        !status.ok()) {
      check.Fail(absl::StrCat("invalid --listen=", config->listen,
                              ": expected HOST:PORT such as 127.0.0.1:9464, "
                              "or empty to disable the listener"));
    }
  }
  config->final_metrics_file = absl::GetFlag(FLAGS_final_metrics_file);
  config->log_level = absl::GetFlag(FLAGS_log_level);
  check.OneOf("log_level", config->log_level,
              {"trace", "debug", "info", "warn", "error", "off"});
  config->log_format = absl::GetFlag(FLAGS_log_format);
  check.OneOf("log_format", config->log_format, {"text", "json"});

  // Whatever the flag checks missed, the components' own validation catches.
  check.Validate([&] { return ValidatePipelineOptions(pipeline); });
  if (config->source == "sim") {
    check.Validate([&] { return ValidateSimOptions(sim); });
  }
  if (config->source == "cloudflare") {
    check.Validate(
        [&] { return ValidateCloudflareOptions(config->cloudflare); });
  }
  return check.error();
}

}  // namespace

CommandLine ParseCommandLine(int argc, char** argv) {
  const FlagSyntax syntax = {
      .program = kProgram,
      .flag_names = FlagNames(),
      .help_arguments = {"--help", "-h", "--helpfull"},
      .accepts_version = true,
  };
  FlagArguments arguments = ApplyFlagArguments(argc, argv, syntax);
  CommandLine command_line;
  std::string error = std::move(arguments.error);
  if (arguments.request == FlagArguments::Request::kPrintHelp) {
    command_line.action = CommandLine::Action::kPrintHelp;
  } else if (arguments.request == FlagArguments::Request::kPrintVersion) {
    command_line.action = CommandLine::Action::kPrintVersion;
  } else if (error.empty()) {
    error = BuildConfig(&command_line.config);
  }
  if (!error.empty()) {
    command_line.action = CommandLine::Action::kInvalid;
    command_line.error = std::move(error);
  }
  return command_line;
}

std::string DescribeConfig() {
  std::string text;
  for (const HelpSection& section : HelpSections()) {
    for (const char* name : section.flags) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      std::string value = flag->CurrentValue();
      // Paths of secret files are not secrets, but URLs may carry
      // user:password@, so every URL goes through RedactUrl.
      if (absl::StrContains(name, "url")) value = RedactUrl(value);
      absl::StrAppend(&text, text.empty() ? "" : " ", DashedFlagName(name),
                      "=", value.empty() ? "\"\"" : value);
    }
  }
  absl::StrAppend(&text, " sink-basic-auth=",
                  std::getenv("CONVERGE_SINK_USERNAME") ? "set" : "unset");
  return text;
}

std::string HelpText() {
  std::string text = FlagHelpHeader(
      kProgram,
      "Fetches still-settling per-minute analytics again and again, pushes "
      "each\n(series, bucket) value once it stops changing, stamped with the "
      "bucket's\nown time, and force-flushes values that never settle.\n");
  for (const HelpSection& section : HelpSections()) {
    absl::StrAppend(&text, "\n", section.title, ":\n");
    for (const char* name : section.flags) {
      absl::StrAppend(&text, FlagHelpEntry(name));
    }
  }
  return text;
}

}  // namespace converge

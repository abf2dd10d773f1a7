#include "tests/testing/victoria_metrics.h"

#include <signal.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include <httplib.h>
#include <simdjson.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/absl_compat.h"
#include "tests/testing/free_port.h"

namespace converge::harness {
namespace {

constexpr char kHost[] = "127.0.0.1";
constexpr absl::Duration kStartupTimeout = absl::Seconds(30);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);

// A new port is tried when the server exits during startup, which is what
// happens when another process took the chosen port first.
constexpr int kStartAttempts = 3;

// Creates a fresh folder under $TMPDIR (or /tmp).
absl::StatusOr<std::string> MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(
      base != nullptr && *base != '\0' ? base : "/tmp", "/converge-vm-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    const int error = errno;
    return absl::UnavailableError(absl::StrCat(
        "failed to create a temporary folder from \"", pattern, "\": ",
        std::error_code(error, std::generic_category()).message()));
  }
  return pattern;
}

httplib::Client MakeClient(int port) {
  httplib::Client client(kHost, port);
  client.set_connection_timeout(2);
  client.set_read_timeout(30);
  return client;
}

// Parses one line of /api/v1/export output.
absl::StatusOr<ExportedSeries> ParseExportLine(simdjson::dom::parser& parser,
                                               std::string_view line) {
  const auto invalid = [line](std::string_view what) {
    return absl::InternalError(absl::StrCat(
        "invalid /api/v1/export line (", ToAbsl(what),
        "): ", ToAbsl(line.substr(0, 500))));
  };

  simdjson::dom::element root;
  if (parser.parse(simdjson::padded_string(line)).get(root)) {
    return invalid("not JSON");
  }

  ExportedSeries series;
  simdjson::dom::object metric;
  if (root["metric"].get(metric)) return invalid("no \"metric\" object");
  for (const auto field : metric) {
    std::string_view value;
    if (field.value.get(value)) return invalid("a label value is no string");
    series.metric.emplace(std::string(field.key), std::string(value));
  }

  simdjson::dom::array values;
  if (root["values"].get(values)) return invalid("no \"values\" array");
  for (const simdjson::dom::element element : values) {
    double value = 0;
    if (element.get(value)) return invalid("a value is no number");
    series.values.push_back(value);
  }

  simdjson::dom::array timestamps;
  if (root["timestamps"].get(timestamps)) {
    return invalid("no \"timestamps\" array");
  }
  for (const simdjson::dom::element element : timestamps) {
    int64_t timestamp = 0;
    if (element.get(timestamp)) return invalid("a timestamp is no integer");
    series.timestamps.push_back(timestamp);
  }
  if (series.values.size() != series.timestamps.size()) {
    return invalid("values and timestamps differ in length");
  }
  return series;
}

}  // namespace

absl::StatusOr<std::unique_ptr<VictoriaMetrics>> VictoriaMetrics::Start() {
  absl::StatusOr<std::string> binary = FindExecutable("victoria-metrics");
  if (!binary.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        binary.status().message(),
        "; run scripts/install-deps.sh as root to install the "
        "victoria-metrics package"));
  }

  absl::Status last_error;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    absl::StatusOr<std::string> temp_dir = MakeTempDir();
    if (!temp_dir.ok()) return temp_dir.status();

    std::unique_ptr<VictoriaMetrics> server(
        new VictoriaMetrics(*binary, *temp_dir, *port));
    last_error = server->Launch();
    if (last_error.ok()) return server;

    // Only an early exit (kUnavailable) may be a lost race for the port.
    if (!absl::IsUnavailable(last_error)) break;
  }
  return last_error;
}

VictoriaMetrics::VictoriaMetrics(std::string binary, std::string temp_dir,
                                 int port)
    : binary_(std::move(binary)),
      temp_dir_(std::move(temp_dir)),
      data_path_(temp_dir_ + "/data"),
      log_path_(temp_dir_ + "/victoria-metrics.log"),
      port_(port) {}

VictoriaMetrics::~VictoriaMetrics() {
  process_.reset();  // SIGKILL, which also ends a paused server
  std::error_code ignored;
  std::filesystem::remove_all(temp_dir_, ignored);
}

std::string VictoriaMetrics::base_url() const {
  return absl::StrCat("http://", kHost, ":", port_);
}

std::string VictoriaMetrics::write_url() const {
  return base_url() + "/api/v1/write";
}

absl::Status VictoriaMetrics::Launch() {
  SubprocessOptions options;
  options.argv = {binary_,
                  "-storageDataPath=" + data_path_,
                  absl::StrCat("-httpListenAddr=", kHost, ":", port_),
                  "-retentionPeriod=100y"};
  options.stdout_path = temp_dir_ + "/stdout.log";
  options.stderr_path = log_path_;
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(options);
  if (!process.ok()) return process.status();
  process_ = std::move(*process);
  paused_ = false;

  absl::Status healthy = WaitHealthy(kStartupTimeout);
  if (!healthy.ok()) process_.reset();
  return healthy;
}

absl::Status VictoriaMetrics::WaitHealthy(absl::Duration timeout) {
  // Poll /health every 20 ms, because the server gives no other readiness
  // signal.
  const absl::Time deadline = absl::Now() + timeout;
  httplib::Client client = MakeClient(port_);
  client.set_read_timeout(1);
  while (true) {
    if (std::optional<int> status = process_->Poll(); status.has_value()) {
      return absl::UnavailableError(absl::StrCat(
          "victoria-metrics on port ", port_, " ", DescribeWaitStatus(*status),
          " during startup; end of its log:\n", LogTail()));
    }
    httplib::Result result = client.Get("/health");
    if (result && result->status == 200 && result->body.starts_with("OK")) {
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "victoria-metrics on port ", port_, " did not answer GET /health with OK"
      " within ", absl::FormatDuration(timeout), "; end of its log:\n",
      LogTail()));
}

absl::Status VictoriaMetrics::ForceFlush() {
  httplib::Client client = MakeClient(port_);
  httplib::Result result = client.Post("/internal/force_flush");
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("POST /internal/force_flush on port ", port_,
                     " failed: ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::InternalError(absl::StrCat(
        "POST /internal/force_flush returned HTTP ", result->status, ": ",
        result->body));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ExportedSeries>> VictoriaMetrics::Export(
    std::string_view match) {
  // Fetch.
  httplib::Client client = MakeClient(port_);
  const httplib::Params params = {{"match[]", std::string(match)}};
  httplib::Result result = client.Get("/api/v1/export", params, {});
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET /api/v1/export on port ", port_, " failed: ",
                     httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::InternalError(
        absl::StrCat("GET /api/v1/export?match[]=", ToAbsl(match),
                     " returned HTTP ",
                     result->status, ": ", result->body));
  }

  // Parse one JSON object per line.
  simdjson::dom::parser parser;
  std::vector<ExportedSeries> series;
  for (absl::string_view line :
       absl::StrSplit(result->body, '\n', absl::SkipWhitespace())) {
    absl::StatusOr<ExportedSeries> parsed =
        ParseExportLine(parser, ToStd(line));
    if (!parsed.ok()) return parsed.status();
    series.push_back(std::move(*parsed));
  }
  return series;
}

absl::Status VictoriaMetrics::Pause() {
  if (absl::Status status = process_->Signal(SIGSTOP); !status.ok()) {
    return status;
  }
  paused_ = true;
  return absl::OkStatus();
}

absl::Status VictoriaMetrics::Resume() {
  if (absl::Status status = process_->Signal(SIGCONT); !status.ok()) {
    return status;
  }
  paused_ = false;
  return absl::OkStatus();
}

absl::Status VictoriaMetrics::Restart(absl::Duration down_time) {
  if (absl::Status stopped = Stop(); !stopped.ok()) return stopped;
  absl::SleepFor(down_time);
  return Launch();
}

absl::Status VictoriaMetrics::Stop() {
  if (process_ == nullptr) return absl::OkStatus();

  // A stopped process does not act on SIGTERM until it is continued.
  if (paused_) {
    if (absl::Status resumed = Resume(); !resumed.ok()) return resumed;
  }
  if (absl::Status sent = process_->Signal(SIGTERM); !sent.ok()) return sent;

  absl::StatusOr<int> exited = process_->Wait(kStopTimeout);
  process_.reset();  // kills it if SIGTERM was not enough
  if (!exited.ok()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "victoria-metrics on port ", port_, " did not exit within ",
        absl::FormatDuration(kStopTimeout), " of SIGTERM and was killed"));
  }
  return absl::OkStatus();
}

std::string VictoriaMetrics::LogTail(size_t max_bytes) const {
  std::ifstream file(log_path_, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  const std::string text = contents.str();
  if (text.size() <= max_bytes) return text;
  return text.substr(text.size() - max_bytes);
}

}  // namespace converge::harness

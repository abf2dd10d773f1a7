// Operating the exporter binary. /metrics scraped during a run and at exit
// agree with the summary line, and /ready turns 200 only once the sink has
// delivered. A stalled client on the listener does not hold up the run.
// Secrets appear nowhere in logs, metrics or error output.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/http_get.h"
#include "absl/strings/str_split.h"
#include "tests/testing/exporter_harness.h"
#include "tests/testing/fake_receiver.h"
#include "tests/testing/free_port.h"

namespace converge {
namespace {

namespace fs = std::filesystem;
using harness::ExporterHarness;
using harness::ExporterResult;
using harness::FakeReceiver;
using harness::ReceivedRequest;
using harness::ReceiverReply;
using harness::Subprocess;
using harness::SubprocessOptions;
using harness::SummaryField;

using harness::HttpResult;

HttpResult Get(int port, const std::string& path) {
  return harness::HttpGet(port, path);
}

// Sums every sample of `name` whose labels contain all of `labels` (written
// as `key="value"`), from Prometheus text format.
double SumMetric(const std::string& text, const std::string& name,
                 const std::vector<std::string>& labels = {}) {
  double sum = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (line.substr(0, name_end) != name) continue;
    bool match = true;
    for (const std::string& label : labels) {
      match &= line.find(label) != std::string::npos;
    }
    double value = 0;
    if (match && absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) {
      sum += value;
    }
  }
  return sum;
}

class OperateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override {
    dir_ = harness::MakeTestDir("converge-operate-test");
    absl::StatusOr<int> port = harness::PickFreePort();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }
  void TearDown() override { fs::remove_all(dir_); }

  ExporterHarness Harness() const {
    return ExporterHarness(CONVERGE_EXPORTER_PATH, dir_);
  }
  std::string Listen() const { return absl::StrCat("--listen=127.0.0.1:", port_); }

  // Waits (bounded) until the listener responds.
  bool WaitForListener() {
    for (int i = 0; i < 600; ++i) {
      if (Get(port_, "/healthz").status == 200) return true;
      usleep(20'000);
    }
    return false;
  }

  fs::path dir_;
  int port_ = 0;
};

TEST_F(OperateTest, MetricsAgreeWithSummary) {
  const fs::path final_metrics = dir_ / "final.prom";
  absl::StatusOr<std::unique_ptr<Subprocess>> exporter = Harness().Start(
      {"--source=sim", "--sim-zones=300", "--sim-series-per-zone=10",
       "--sim-duration=2h", "--sim-start=2026-06-01T00:00:00Z", "--sink=null",
       "--shards=2", Listen(), "--final-metrics-file=" + final_metrics.string()},
      "metrics");
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_TRUE(WaitForListener()) << "the listener never answered";

  // A client that sends half a request and then stalls must not hold up the
  // run or the other clients.
  const int stalled = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port_));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(stalled, reinterpret_cast<sockaddr*>(&address),
                    sizeof(address)),
            0);
  const char partial[] = "GET /metrics HTTP/1.1\r\n";
  ASSERT_GT(write(stalled, partial, sizeof(partial) - 1), 0);

  // Scrapes during the run see counters that only grow.
  double last_observations = 0;
  int scrapes = 0;
  while (!(*exporter)->Poll().has_value() && scrapes < 200) {
    const HttpResult scrape = Get(port_, "/metrics");
    if (scrape.status != 200) break;  // the run ended between two checks
    const double observations =
        SumMetric(scrape.body, "converge_observations_total");
    EXPECT_GE(observations, last_observations);
    last_observations = observations;
    ++scrapes;
  }
  EXPECT_GT(scrapes, 0);
  const ExporterResult result =
      Harness().Finish(**exporter, "metrics", absl::Minutes(5));
  close(stalled);
  ASSERT_EQ(result.exit_code, 0) << result.err;

  // The metrics written at exit agree with the summary line.
  const std::string text = harness::ReadFile(final_metrics);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(SumMetric(text, "converge_observations_total"),
            SummaryField(result.err, "observations"));
  EXPECT_EQ(SumMetric(text, "converge_engine_observations_total"),
            SummaryField(result.err, "observations"));
  EXPECT_EQ(SumMetric(text, "converge_samples_emitted_total"),
            SummaryField(result.err, "samples"));
  EXPECT_EQ(SumMetric(text, "converge_samples_emitted_total",
                      {"cause=\"forced\""}),
            SummaryField(result.err, "forced"));
  EXPECT_EQ(SumMetric(text, "converge_sink_samples_total",
                      {"outcome=\"delivered\""}),
            SummaryField(result.err, "delivered"));
  EXPECT_EQ(SumMetric(text, "converge_fetches_total", {"outcome=\"ok\""}),
            SummaryField(result.err, "fetches_ok"));
  EXPECT_EQ(SumMetric(text, "converge_ticks_started_total"),
            SummaryField(result.err, "ticks"));
  EXPECT_GT(SumMetric(text, "converge_first_push_age_seconds_count"), 0);
  EXPECT_EQ(SumMetric(text, "converge_ready"), 1);
  EXPECT_GT(SumMetric(text, "converge_shard_cpu_seconds_total"), 0);
}

TEST_F(OperateTest, ReadyOnlyAfterSinkDelivers) {
  FakeReceiver receiver;
  receiver.Stop();  // connections are refused until Start()
  absl::StatusOr<std::unique_ptr<Subprocess>> exporter = Harness().Start(
      {"--source=sim", "--sim-duration=1000h",
       "--sim-start=2026-06-01T00:00:00Z", "--sink=remote-write",
       "--sink-url=" + receiver.url(), "--sink-retry-max=200ms",
       "--sink-retry-min=50ms", Listen()},
      "ready");
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_TRUE(WaitForListener());

  HttpResult ready = Get(port_, "/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("\"ready\":false"), std::string::npos)
      << ready.body;

  receiver.Start();
  bool became_ready = false;
  for (int i = 0; i < 600 && !became_ready; ++i) {
    became_ready = Get(port_, "/ready").status == 200;
    if (!became_ready) usleep(20'000);
  }
  EXPECT_TRUE(became_ready);
  EXPECT_GT(receiver.accepted().size(), 0u);

  ASSERT_TRUE((*exporter)->Signal(SIGTERM).ok());
  const ExporterResult result =
      Harness().Finish(**exporter, "ready", absl::Minutes(2));
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST_F(OperateTest, SecretsAppearNowhere) {
  const std::string token = "tok-3f9c1d7e-SECRET";
  const std::string password = "pw-81b2-SECRET";
  const fs::path token_file = dir_ / "token";
  std::ofstream(token_file) << token << "\n";

  // A receiver that echoes the request's Authorization header in its 401
  // page, as some proxies do.
  FakeReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest& request) {
    auto it = request.headers.find("Authorization");
    const std::string echoed = it == request.headers.end() ? "" : it->second;
    return ReceiverReply{401, "unauthorized: " + echoed};
  });

  absl::StatusOr<std::unique_ptr<Subprocess>> exporter = Harness().Start(
      {"--source=sim", "--sim-duration=20m", "--sim-start=2026-06-01T00:00:00Z",
       "--sink=remote-write", "--sink-url=" + receiver.url(),
       "--sink-bearer-token-file=" + token_file.string(), Listen(),
       "--final-metrics-file=" + (dir_ / "final.prom").string(),
       "--log-level=debug"},
      "secret");
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const ExporterResult result =
      Harness().Finish(**exporter, "secret", absl::Minutes(2));
  ASSERT_EQ(result.exit_code, 0) << result.err;

  // The token went to the receiver, and was rejected, which got logged.
  ASSERT_FALSE(receiver.requests().empty());
  EXPECT_GT(SummaryField(result.err, "rejected"), 0u);
  EXPECT_NE(result.err.find("HTTP 401"), std::string::npos) << result.err;
  const std::string metrics = harness::ReadFile(dir_ / "final.prom");
  for (const std::string& where : {result.err, result.out, metrics}) {
    EXPECT_EQ(where.find(token), std::string::npos) << where;
  }

  // Basic auth from the environment: a failing start must not print the
  // password either.
  SubprocessOptions options;
  options.argv = {CONVERGE_EXPORTER_PATH, "--sink=remote-write",
                  "--sink-url=" + receiver.url(),
                  "--sink-bearer-token-file=" + token_file.string(),
                  "--listen="};
  options.env = {{"CONVERGE_SINK_USERNAME", "writer"},
                 {"CONVERGE_SINK_PASSWORD", password}};
  options.stderr_path = (dir_ / "both.err").string();
  options.stdout_path = (dir_ / "both.out").string();
  absl::StatusOr<std::unique_ptr<Subprocess>> both = Subprocess::Start(options);
  ASSERT_TRUE(both.ok());
  absl::StatusOr<int> status = (*both)->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  const std::string error = harness::ReadFile(dir_ / "both.err");
  EXPECT_NE(error.find("CONVERGE_SINK_USERNAME"), std::string::npos) << error;
  EXPECT_EQ(error.find(password), std::string::npos) << error;
  EXPECT_EQ(error.find(token), std::string::npos) << error;
}

}  // namespace
}  // namespace converge

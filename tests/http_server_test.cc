// The HTTP listener: /healthz, /ready before and after the first cycle,
// /metrics parsed by a strict exposition-format parser, and a slow client
// that must not hold up other requests.

#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include <curl/curl.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/http_get.h"

namespace converge {
namespace {

using harness::HttpResult;

HttpResult Get(int port, const std::string& path) {
  return harness::HttpGet(port, path);
}

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  void SetUp() override {
    snapshot_.shards.resize(2);
    snapshot_.first_push_age_seconds = MakeFirstPushAgeHistogram();
    snapshot_.correction_size = MakeCorrectionSizeHistogram();
    ExporterInfo info{"0.1.0", "sim", "file", 2, 1, 3};
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
        "127.0.0.1:0",
        [this] {
          std::lock_guard<std::mutex> lock(mutex_);
          return snapshot_;
        },
        info);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  void Update(const std::function<void(PipelineSnapshot&)>& change) {
    std::lock_guard<std::mutex> lock(mutex_);
    change(snapshot_);
  }

  std::mutex mutex_;
  PipelineSnapshot snapshot_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, HealthzAnswersOk) {
  const HttpResult result = Get(server_->port(), "/healthz");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "ok\n");
}

TEST_F(HttpServerTest, ReadyOnlyAfterFirstCycle) {
  HttpResult result = Get(server_->port(), "/ready");
  EXPECT_EQ(result.status, 503);
  EXPECT_NE(result.body.find("no fetch has succeeded yet"), std::string::npos);

  Update([](PipelineSnapshot& s) { s.first_fetch_done = true; });
  result = Get(server_->port(), "/ready");
  EXPECT_EQ(result.status, 503);
  EXPECT_NE(result.body.find("sink"), std::string::npos);

  Update([](PipelineSnapshot& s) { s.sink_ready = true; });
  result = Get(server_->port(), "/ready");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "{\"ready\":true}\n");
}

TEST_F(HttpServerTest, MetricsShowSnapshotValues) {
  Update([](PipelineSnapshot& s) {
    s.shards[1].engine.samples_forced = 17;
    s.sink.delivered = 1234;
    s.sink.rejected_by_http_status[400] = 3;
    s.lanes[static_cast<size_t>(Lane::kBackfill)].observations = 99;
    s.first_push_age_seconds.Observe(200);
    s.source.api_queries_by_dataset["httpRequests1mGroups"] = 42;
    s.source.failures[{"dnsAnalyticsAdaptiveGroups", "timeout"}] = 2;
  });
  const HttpResult result = Get(server_->port(), "/metrics");
  ASSERT_EQ(result.status, 200);
  const std::string& text = result.body;
  EXPECT_NE(text.find("converge_samples_emitted_total{shard=\"1\",cause=\"forced\"} 17"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("converge_sink_samples_total{outcome=\"delivered\"} 1234"),
            std::string::npos);
  EXPECT_NE(text.find("converge_sink_rejected_samples_total{status=\"400\"} 3"),
            std::string::npos);
  EXPECT_NE(text.find("converge_observations_total{lane=\"backfill\"} 99"),
            std::string::npos);
  EXPECT_NE(text.find("converge_first_push_age_seconds_bucket{le=\"240\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("converge_api_queries_total{dataset=\"httpRequests1mGroups\"} 42"),
            std::string::npos);
  EXPECT_NE(text.find("converge_fetch_failures_total{dataset=\"dnsAnalyticsAdaptiveGroups\",cause=\"timeout\"} 2"),
            std::string::npos);
}

// The Python prometheus_client parser (Debian package python3-prometheus-client,
// so /usr/bin/python3) rejects anything outside the text
// format: malformed lines, duplicate HELP/TYPE, bad label escaping.
TEST_F(HttpServerTest, MetricsPassStrictParser) {
  Update([](PipelineSnapshot& s) {
    s.sink.rejected_by_http_status[0] = 1;
    s.correction_size.Observe(0.03);
  });
  const HttpResult result = Get(server_->port(), "/metrics");
  ASSERT_EQ(result.status, 200);

  const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      absl::StrCat("converge-metrics-", getpid(), ".txt");
  std::ofstream(file) << result.body;
  const std::string command = absl::StrCat(
      "/usr/bin/python3 -c 'import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "families = list(text_string_to_metric_families(open(sys.argv[1]).read()))\n"
      "assert len(families) > 20, len(families)\n"
      "print(len(families))' ",
      file.string(), " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  std::filesystem::remove(file);
  EXPECT_EQ(status, 0) << "parser output: " << output;
}

TEST_F(HttpServerTest, SlowClientDoesNotBlockOthers) {
  // Open a connection and send half a request, then leave it hanging.
  const int stalled = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(stalled, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(stalled, reinterpret_cast<sockaddr*>(&address),
                    sizeof(address)),
            0);
  const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  ASSERT_GT(write(stalled, partial, sizeof(partial) - 1), 0);

  // Other clients are still served while it hangs.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Get(server_->port(), "/healthz").status, 200);
    EXPECT_EQ(Get(server_->port(), "/metrics").status, 200);
  }
  close(stalled);
}

TEST_F(HttpServerTest, MalformedRequestDoesNotBreakServer) {
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address),
                    sizeof(address)),
            0);
  const char garbage[] = "\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n";
  ASSERT_GT(write(client, garbage, sizeof(garbage) - 1), 0);
  close(client);

  EXPECT_EQ(Get(server_->port(), "/healthz").status, 200);
  EXPECT_EQ(Get(server_->port(), "/metrics").status, 200);
}

TEST(ListenAddressTest, ParsesHostAndPort) {
  absl::StatusOr<std::pair<std::string, int>> address =
      ParseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->first, "127.0.0.1");
  EXPECT_EQ(address->second, 9464);

  address = ParseListenAddress("[::1]:80");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->first, "::1");

  EXPECT_FALSE(ParseListenAddress("9464").ok());
  EXPECT_FALSE(ParseListenAddress("localhost:http").ok());
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:70000").ok());
}

}  // namespace
}  // namespace converge

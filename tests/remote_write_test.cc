#include <curl/curl.h>
#include <snappy.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "absl/strings/cord.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "converge/sinks.h"
#include "core/absl_compat.h"
#include "remote.pb.h"
#include "tests/testing/fake_receiver.h"
#include "tests/testing/free_port.h"

namespace converge {
namespace {

using LabelPairs = std::vector<std::pair<std::string, std::string>>;

Sample MakeSample(std::string_view name, std::vector<Label> labels,
                  int64_t timestamp_ms, uint64_t value) {
  absl::StatusOr<SeriesKey> key = SeriesKey::Make(name, std::move(labels));
  EXPECT_TRUE(key.ok()) << key.status();
  return Sample{*key, timestamp_ms, value, SampleCause::kStable};
}

prompb::WriteRequest Decode(const std::string& encoded) {
  prompb::WriteRequest request;
  EXPECT_TRUE(request.ParseFromString(encoded));
  return request;
}

LabelPairs LabelsOf(const prompb::TimeSeries& series) {
  LabelPairs labels;
  for (const prompb::Label& label : series.labels()) {
    labels.emplace_back(label.name(), label.value());
  }
  return labels;
}

using SamplePairs = std::vector<std::pair<int64_t, double>>;

SamplePairs SamplesOf(const prompb::TimeSeries& series) {
  SamplePairs samples;
  for (const prompb::Sample& sample : series.samples()) {
    samples.emplace_back(sample.timestamp(), sample.value());
  }
  return samples;
}

// --- Encoding ----------------------------------------------------------------

TEST(EncodeWriteRequestTest, PlacesNameLabelInByteOrder) {
  // 'C' (0x43) < '_' (0x5F) < 'c' (0x63): an uppercase label sorts before
  // __name__, lowercase ones after it.
  const std::vector<Sample> batch = {MakeSample(
      "requests_total", {{"zone", "z"}, {"colo", "FRA"}, {"Country", "DE"}},
      60000, 5)};

  const prompb::WriteRequest request = Decode(EncodeWriteRequest(batch));

  ASSERT_EQ(request.timeseries_size(), 1);
  EXPECT_EQ(LabelsOf(request.timeseries(0)),
            (LabelPairs{{"Country", "DE"},
                        {"__name__", "requests_total"},
                        {"colo", "FRA"},
                        {"zone", "z"}}));
}

TEST(EncodeWriteRequestTest, SeriesWithoutLabelsHasOnlyName) {
  const std::vector<Sample> batch = {MakeSample("up", {}, 0, 1)};
  const prompb::WriteRequest request = Decode(EncodeWriteRequest(batch));
  ASSERT_EQ(request.timeseries_size(), 1);
  EXPECT_EQ(LabelsOf(request.timeseries(0)), (LabelPairs{{"__name__", "up"}}));
}

TEST(EncodeWriteRequestTest, NameSortsAfterUnderscoreUppercase) {
  // "_A" < "__name__" < "_a" in byte order.
  const std::vector<Sample> batch = {
      MakeSample("m", {{"_a", "1"}, {"_A", "2"}}, 0, 1)};
  const prompb::WriteRequest request = Decode(EncodeWriteRequest(batch));
  ASSERT_EQ(request.timeseries_size(), 1);
  EXPECT_EQ(LabelsOf(request.timeseries(0)),
            (LabelPairs{{"_A", "2"}, {"__name__", "m"}, {"_a", "1"}}));
}

TEST(EncodeWriteRequestTest, GroupsSamplesOfOneSeriesInBatchOrder) {
  const std::vector<Sample> batch = {
      MakeSample("requests", {{"zone", "a"}}, 60000, 10),
      MakeSample("requests", {{"zone", "b"}}, 60000, 20),
      MakeSample("requests", {{"zone", "a"}}, 120000, 11),
      // A later correction of the first bucket stays after it.
      MakeSample("requests", {{"zone", "a"}}, 60000, 12),
  };

  const prompb::WriteRequest request = Decode(EncodeWriteRequest(batch));

  ASSERT_EQ(request.timeseries_size(), 2);
  EXPECT_EQ(LabelsOf(request.timeseries(0)),
            (LabelPairs{{"__name__", "requests"}, {"zone", "a"}}));
  EXPECT_EQ(SamplesOf(request.timeseries(0)),
            (SamplePairs{{60000, 10}, {120000, 11}, {60000, 12}}));
  EXPECT_EQ(LabelsOf(request.timeseries(1)),
            (LabelPairs{{"__name__", "requests"}, {"zone", "b"}}));
  EXPECT_EQ(SamplesOf(request.timeseries(1)), (SamplePairs{{60000, 20}}));
}

TEST(EncodeWriteRequestTest, ValuesAreDoubles) {
  const uint64_t two_to_53 = uint64_t{1} << 53;
  const std::vector<Sample> batch = {MakeSample("m", {}, -1, 0),
                                     MakeSample("m", {}, 1, two_to_53)};
  const prompb::WriteRequest request = Decode(EncodeWriteRequest(batch));
  ASSERT_EQ(request.timeseries_size(), 1);
  EXPECT_EQ(SamplesOf(request.timeseries(0)),
            (SamplePairs{{-1, 0.0}, {1, 9007199254740992.0}}));
}

TEST(EncodeWriteRequestTest, EmptyBatchEncodesEmptyRequest) {
  EXPECT_EQ(Decode(EncodeWriteRequest({})).timeseries_size(), 0);
}

TEST(SnappyCompressTest, RoundTrips) {
  std::string raw;
  for (int i = 0; i < 1000; ++i) raw += "cloudflare_zone_requests_total";
  raw.push_back('\0');

  const std::string compressed = SnappyCompress(raw);

  EXPECT_LT(compressed.size(), raw.size());
  ASSERT_TRUE(
      snappy::IsValidCompressedBuffer(compressed.data(), compressed.size()));
  std::string restored;
  ASSERT_TRUE(
      snappy::Uncompress(compressed.data(), compressed.size(), &restored));
  EXPECT_EQ(restored, raw);
}

// --- RetryAfter --------------------------------------------------------------

TEST(RetryAfterTest, ReadsPayloadSeconds) {
  absl::Status status = absl::UnavailableError("busy");
  status.SetPayload(ToAbsl(kRetryAfterPayload), absl::Cord("7"));
  EXPECT_EQ(RetryAfter(status), absl::Seconds(7));
}

TEST(RetryAfterTest, MissingOrMalformedPayloadIsNullopt) {
  EXPECT_EQ(RetryAfter(absl::UnavailableError("busy")), std::nullopt);
  for (const char* text : {"", "soon", "-1", "nan", "inf"}) {
    absl::Status status = absl::UnavailableError("busy");
    status.SetPayload(ToAbsl(kRetryAfterPayload), absl::Cord(text));
    EXPECT_EQ(RetryAfter(status), std::nullopt) << text;
  }
}

// --- The sink against a local receiver ---------------------------------------

using harness::FakeReceiver;
using harness::ReceivedRequest;

std::string HeaderOf(const ReceivedRequest& request,
                     const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? "<missing>" : it->second;
}

class RemoteWriteSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }

  std::unique_ptr<Sink> OpenSink(const std::string& url,
                                 absl::Duration timeout = absl::Seconds(10)) {
    absl::StatusOr<std::unique_ptr<Sink>> sink =
        MakeRemoteWriteSink({.url = url, .timeout = timeout});
    EXPECT_TRUE(sink.ok()) << sink.status();
    if (!sink.ok()) return nullptr;
    const absl::Status opened = (*sink)->Open();
    EXPECT_TRUE(opened.ok()) << opened;
    return std::move(*sink);
  }

  absl::Status PushOne(Sink& sink) {
    const std::vector<Sample> batch = {
        MakeSample("requests_total", {{"zone", "a"}}, 1782327540000, 42)};
    return sink.Push(batch);
  }

  FakeReceiver receiver_;
};

TEST_F(RemoteWriteSinkTest, SendsRemoteWriteHeaders) {
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  ASSERT_TRUE(status.ok()) << status;
  const std::vector<ReceivedRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].path, "/api/v1/write");
  EXPECT_EQ(HeaderOf(requests[0], "Content-Encoding"), "snappy");
  EXPECT_EQ(HeaderOf(requests[0], "Content-Type"), "application/x-protobuf");
  EXPECT_EQ(HeaderOf(requests[0], "X-Prometheus-Remote-Write-Version"),
            "0.1.0");
  EXPECT_TRUE(HeaderOf(requests[0], "User-Agent")
                  .starts_with("converge-exporter/"))
      << HeaderOf(requests[0], "User-Agent");
}

TEST_F(RemoteWriteSinkTest, SendsBearerToken) {
  absl::StatusOr<std::unique_ptr<Sink>> sink = MakeRemoteWriteSink(
      {.url = receiver_.url(), .bearer_token = "secret-token-123"});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Open().ok());
  ASSERT_TRUE(PushOne(**sink).ok());
  const std::vector<ReceivedRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(HeaderOf(requests[0], "Authorization"), "Bearer secret-token-123");
}

TEST_F(RemoteWriteSinkTest, SendsBasicAuth) {
  absl::StatusOr<std::unique_ptr<Sink>> sink =
      MakeRemoteWriteSink({.url = receiver_.url(),
                           .basic_auth_username = "writer",
                           .basic_auth_password = "hunter2"});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Open().ok());
  ASSERT_TRUE(PushOne(**sink).ok());
  const std::vector<ReceivedRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  // base64("writer:hunter2")
  EXPECT_EQ(HeaderOf(requests[0], "Authorization"), "Basic d3JpdGVyOmh1bnRlcjI=");
}

TEST_F(RemoteWriteSinkTest, BearerAndBasicAuthAreExclusive) {
  absl::StatusOr<std::unique_ptr<Sink>> sink =
      MakeRemoteWriteSink({.url = receiver_.url(),
                           .bearer_token = "t",
                           .basic_auth_username = "u"});
  EXPECT_EQ(sink.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RemoteWriteSinkTest, BodyDecodesToTheBatch) {
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);
  const std::vector<Sample> batch = {
      MakeSample("requests_total", {{"zone", "a"}, {"Country", "DE"}},
                 1782327540000, 42),
      MakeSample("requests_total", {{"zone", "a"}, {"Country", "DE"}},
                 1782327600000, 43)};

  ASSERT_TRUE(sink->Push(batch).ok());

  const std::vector<ReceivedRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  std::string raw;
  ASSERT_TRUE(snappy::Uncompress(requests[0].body.data(),
                                 requests[0].body.size(), &raw));
  const prompb::WriteRequest request = Decode(raw);
  ASSERT_EQ(request.timeseries_size(), 1);
  EXPECT_EQ(LabelsOf(request.timeseries(0)),
            (LabelPairs{{"Country", "DE"},
                        {"__name__", "requests_total"},
                        {"zone", "a"}}));
  EXPECT_EQ(SamplesOf(request.timeseries(0)),
            (SamplePairs{{1782327540000, 42}, {1782327600000, 43}}));
}

TEST_F(RemoteWriteSinkTest, EmptyBatchSendsNothing) {
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->Push({}).ok());
  EXPECT_TRUE(receiver_.requests().empty());
}

TEST_F(RemoteWriteSinkTest, ServerErrorIsRetryable) {
  receiver_.Reply(503, "overloaded");
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("503"), std::string::npos) << status;
  EXPECT_EQ(RetryAfter(status), std::nullopt);
}

TEST_F(RemoteWriteSinkTest, TooManyRequestsCarriesRetryAfterSeconds) {
  receiver_.Reply(429, "slow down", "7");
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(RetryAfter(status), absl::Seconds(7));
}

TEST_F(RemoteWriteSinkTest, RetryAfterHttpDateIsMeasuredFromNow) {
  const std::string in_one_hour =
      absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                       absl::Now() + absl::Hours(1), absl::UTCTimeZone());
  receiver_.Reply(503, "", in_one_hour);
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  const std::optional<absl::Duration> delay = RetryAfter(status);
  ASSERT_TRUE(delay.has_value()) << status << " Retry-After: " << in_one_hour;
  EXPECT_GT(*delay, absl::Minutes(55));
  EXPECT_LE(*delay, absl::Hours(1) + absl::Seconds(1));
}

TEST_F(RemoteWriteSinkTest, RetryAfterHttpDateInThePastIsZero) {
  receiver_.Reply(503, "", "Wed, 21 Oct 2015 07:28:00 GMT");
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(RetryAfter(PushOne(*sink)), absl::ZeroDuration());
}

TEST_F(RemoteWriteSinkTest, ClientErrorIsNotRetryableAndQuotesReceiver) {
  receiver_.Reply(400, "cannot parse label \"zone\"\n");
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("HTTP 400"), std::string::npos) << status;
  EXPECT_NE(status.message().find("cannot parse label \"zone\""),
            std::string::npos)
      << status;
}

TEST_F(RemoteWriteSinkTest, LongErrorBodyIsTruncated) {
  receiver_.Reply(400, std::string(100000, 'x'));
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(status.message().size(), 1000u);
  EXPECT_NE(status.message().find("truncated"), std::string::npos);

  // The rest of the body was read, so the connection is still usable.
  receiver_.Reply(204);
  EXPECT_TRUE(PushOne(*sink).ok());
}

TEST_F(RemoteWriteSinkTest, ConnectionRefusedIsRetryable) {
  absl::StatusOr<int> port = harness::PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  std::unique_ptr<Sink> sink = OpenSink(
      "http://127.0.0.1:" + std::to_string(*port) + "/api/v1/write");
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

TEST_F(RemoteWriteSinkTest, TimeoutIsRetryable) {
  receiver_.HoldReplies();
  std::unique_ptr<Sink> sink =
      OpenSink(receiver_.url(), absl::Milliseconds(200));
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);
  receiver_.Release();

  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("timed out"), std::string::npos) << status;
}

TEST_F(RemoteWriteSinkTest, PushesReuseOneConnection) {
  std::unique_ptr<Sink> sink = OpenSink(receiver_.url());
  ASSERT_NE(sink, nullptr);

  ASSERT_TRUE(PushOne(*sink).ok());
  ASSERT_TRUE(PushOne(*sink).ok());
  ASSERT_TRUE(PushOne(*sink).ok());

  // One TCP connection means one client port for every request.
  const std::vector<ReceivedRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].remote_port, requests[0].remote_port);
  EXPECT_EQ(requests[2].remote_port, requests[0].remote_port);
}

TEST_F(RemoteWriteSinkTest, CredentialsAreSentButNeverShown) {
  receiver_.Reply(401, "bad credentials");
  const std::string url = "http://writer:s3cret@127.0.0.1:" +
                          std::to_string(receiver_.port()) + "/api/v1/write";
  std::unique_ptr<Sink> sink = OpenSink(url);
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message().find("s3cret"), std::string::npos) << status;
  EXPECT_EQ(status.message().find("writer"), std::string::npos) << status;
  EXPECT_NE(status.message().find("REDACTED@127.0.0.1"), std::string::npos)
      << status;
  const std::vector<ReceivedRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  // base64("writer:s3cret")
  EXPECT_EQ(HeaderOf(requests[0], "Authorization"), "Basic d3JpdGVyOnMzY3JldA==");
}

TEST_F(RemoteWriteSinkTest, NetworkErrorHidesCredentials) {
  absl::StatusOr<int> port = harness::PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  std::unique_ptr<Sink> sink = OpenSink("http://writer:s3cret@127.0.0.1:" +
                                        std::to_string(*port) + "/write");
  ASSERT_NE(sink, nullptr);

  const absl::Status status = PushOne(*sink);

  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(status.message().find("s3cret"), std::string::npos) << status;
}

TEST_F(RemoteWriteSinkTest, RejectsUrlsThatAreNotHttp) {
  for (const std::string url :
       {"", "ftp://writer:s3cret@127.0.0.1/api/v1/write",
        "127.0.0.1:8428/api/v1/write", "http://"}) {
    absl::StatusOr<std::unique_ptr<Sink>> sink =
        MakeRemoteWriteSink({.url = url});
    EXPECT_EQ(sink.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_NE(sink.status().message().find("http://"), std::string::npos)
        << sink.status();
    EXPECT_EQ(sink.status().message().find("s3cret"), std::string::npos)
        << sink.status();
  }
}

TEST_F(RemoteWriteSinkTest, RejectsNonPositiveTimeout) {
  absl::StatusOr<std::unique_ptr<Sink>> sink =
      MakeRemoteWriteSink({.url = receiver_.url(), .timeout = absl::ZeroDuration()});
  EXPECT_EQ(sink.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RemoteWriteSinkTest, PushBeforeOpenFails) {
  absl::StatusOr<std::unique_ptr<Sink>> sink =
      MakeRemoteWriteSink({.url = receiver_.url()});
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ(PushOne(**sink).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace converge

#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "converge/sources.h"

namespace converge {
namespace {

// 2026-06-24T18:59:00Z in Unix milliseconds.
constexpr int64_t kBucketMs = 1'782'327'540'000;

std::string ObservationJson(const std::string& value = "100",
                            const std::string& labels = R"({"zone":"a"})",
                            const std::string& bucket =
                                "2026-06-24T18:59:00Z") {
  return absl::StrCat(R"({"name":"cloudflare_zone_requests_total","labels":)",
                      labels, R"(,"value":)", value, R"(,"bucket":")", bucket,
                      R"("})");
}

std::string FetchJson(const std::vector<std::string>& observations) {
  return absl::StrCat(
      R"({"seq":3,"start":"2026-06-24T11:54:00-07:00",)",
      R"("end":"2026-06-24T12:04:00-07:00","observations":[)",
      absl::StrJoin(observations, ","), "]}");
}

// Sets TZ for the lifetime of the object, then restores it.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* zone) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", zone, 1);
    tzset();
  }
  ~ScopedTimeZone() {
    if (old_) {
      setenv("TZ", old_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::optional<std::string> old_;
};

void ExpectInvalid(const absl::StatusOr<RecordedFetch>& fetch,
                   const std::string& expected_text) {
  ASSERT_FALSE(fetch.ok());
  EXPECT_EQ(fetch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fetch.status().message().find(expected_text),
            absl::string_view::npos)
      << fetch.status();
}

TEST(RecordedFetchTest, ParsesHeaderFields) {
  absl::StatusOr<RecordedFetch> fetch = ParseRecordedFetch(FetchJson({}));
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  EXPECT_EQ(fetch->seq, 3);
  EXPECT_EQ(fetch->start, absl::FromUnixSeconds(1'782'327'240));  // 18:54Z
  EXPECT_EQ(fetch->end, absl::FromUnixSeconds(1'782'327'840));    // 19:04Z
  EXPECT_TRUE(fetch->observations.empty());
}

TEST(RecordedFetchTest, ParsesObservation) {
  absl::StatusOr<RecordedFetch> fetch = ParseRecordedFetch(
      FetchJson({ObservationJson("21581117", R"({"zone":"z1","status":"200"})")}));
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  ASSERT_EQ(fetch->observations.size(), 1u);

  const Observation& observation = fetch->observations[0];
  absl::StatusOr<SeriesKey> expected = SeriesKey::Make(
      "cloudflare_zone_requests_total", {{"status", "200"}, {"zone", "z1"}});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(observation.series, *expected);
  EXPECT_EQ(observation.bucket_ms, kBucketMs);
  EXPECT_EQ(observation.value, 21581117u);
}

TEST(RecordedFetchTest, KeepsObservationOrder) {
  absl::StatusOr<RecordedFetch> fetch = ParseRecordedFetch(
      FetchJson({ObservationJson("3"), ObservationJson("1"),
                 ObservationJson("2")}));
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  ASSERT_EQ(fetch->observations.size(), 3u);
  EXPECT_EQ(fetch->observations[0].value, 3u);
  EXPECT_EQ(fetch->observations[1].value, 1u);
  EXPECT_EQ(fetch->observations[2].value, 2u);
}

TEST(RecordedFetchTest, OffsetsGiveSameMillisInAnyTimeZone) {
  for (const char* zone : {"UTC", "America/Los_Angeles", "Asia/Kolkata"}) {
    ScopedTimeZone time_zone(zone);
    absl::StatusOr<RecordedFetch> fetch = ParseRecordedFetch(FetchJson({
        ObservationJson("1", R"({"zone":"a"})", "2026-06-24T18:59:00Z"),
        ObservationJson("1", R"({"zone":"a"})", "2026-06-24T11:59:00-07:00"),
        ObservationJson("1", R"({"zone":"a"})", "2026-06-25T00:29:00+05:30"),
    }));
    ASSERT_TRUE(fetch.ok()) << fetch.status();
    ASSERT_EQ(fetch->observations.size(), 3u);
    for (const Observation& observation : fetch->observations) {
      EXPECT_EQ(observation.bucket_ms, kBucketMs) << "TZ=" << zone;
    }
  }
}

TEST(RecordedFetchTest, LabelOrderDoesNotChangeSeries) {
  absl::StatusOr<RecordedFetch> fetch = ParseRecordedFetch(FetchJson({
      ObservationJson("1", R"({"zone":"a","status":"200"})"),
      ObservationJson("1", R"({"status":"200","zone":"a"})"),
  }));
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  EXPECT_EQ(fetch->observations[0].series, fetch->observations[1].series);
}

TEST(RecordedFetchTest, MaxUint64ValueIsAccepted) {
  absl::StatusOr<RecordedFetch> fetch =
      ParseRecordedFetch(FetchJson({ObservationJson("18446744073709551615")}));
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  EXPECT_EQ(fetch->observations[0].value, 18446744073709551615u);
}

TEST(RecordedFetchTest, MalformedJsonIsRejected) {
  ExpectInvalid(ParseRecordedFetch(R"({"seq":1,"start":)"), "not valid JSON");
}

TEST(RecordedFetchTest, NonObjectTopLevelIsRejected) {
  ExpectInvalid(ParseRecordedFetch("[1,2]"), "top level must be an object");
}

TEST(RecordedFetchTest, MissingSeqIsRejected) {
  ExpectInvalid(ParseRecordedFetch(
                    R"({"start":"2026-06-24T11:54:00Z","end":"2026-06-24T11:55:00Z","observations":[]})"),
                "\"seq\"");
}

TEST(RecordedFetchTest, EndBeforeStartIsRejected) {
  ExpectInvalid(ParseRecordedFetch(
                    R"({"seq":1,"start":"2026-06-24T11:55:00Z","end":"2026-06-24T11:54:00Z","observations":[]})"),
                "before \"start\"");
}

TEST(RecordedFetchTest, InvalidStartTimeIsRejected) {
  ExpectInvalid(ParseRecordedFetch(
                    R"({"seq":1,"start":"yesterday","end":"2026-06-24T11:54:00Z","observations":[]})"),
                "field \"start\"");
}

TEST(RecordedFetchTest, NegativeValueIsRejected) {
  ExpectInvalid(
      ParseRecordedFetch(FetchJson({ObservationJson(), ObservationJson("-5")})),
      "observation 1: field \"value\" must be >= 0, got -5");
}

TEST(RecordedFetchTest, FractionalValueIsRejected) {
  ExpectInvalid(ParseRecordedFetch(FetchJson({ObservationJson("1.5")})),
                "observation 0: field \"value\" must be a whole number");
}

TEST(RecordedFetchTest, StringValueIsRejected) {
  ExpectInvalid(ParseRecordedFetch(FetchJson({ObservationJson(R"("12")")})),
                "observation 0: field \"value\" must be a non-negative "
                "integer, got \"12\"");
}

TEST(RecordedFetchTest, MissingBucketIsRejected) {
  ExpectInvalid(
      ParseRecordedFetch(FetchJson(
          {R"({"name":"n","labels":{},"value":1})"})),
      "observation 0: field \"bucket\" is missing");
}

TEST(RecordedFetchTest, InvalidBucketTimeIsRejected) {
  ExpectInvalid(ParseRecordedFetch(FetchJson(
                    {ObservationJson("1", R"({"zone":"a"})",
                                     "2026-06-24 18:59:00")})),
                "observation 0: field \"bucket\"");
}

TEST(RecordedFetchTest, NonStringLabelIsRejected) {
  ExpectInvalid(
      ParseRecordedFetch(FetchJson({ObservationJson("1", R"({"zone":7})")})),
      "observation 0: field \"labels\" label \"zone\" must be a string");
}

TEST(RecordedFetchTest, RepeatedLabelIsRejected) {
  ExpectInvalid(ParseRecordedFetch(FetchJson(
                    {ObservationJson(),
                     ObservationJson("1", R"({"zone":"a","zone":"b"})")})),
                "observation 1: invalid series "
                "cloudflare_zone_requests_total: label \"zone\" appears twice");
}

// Past a few thousand observations the keys are built in parallel, and the
// result must still be in file order.
TEST(RecordedFetchTest, LargeInputKeepsOrder) {
  constexpr int kCount = 20000;
  std::vector<std::string> observations;
  for (int i = 0; i < kCount; ++i) {
    observations.push_back(ObservationJson(
        absl::StrCat(i), absl::StrCat(R"({"zone":"z)", i % 97, R"("})")));
  }
  absl::StatusOr<RecordedFetch> fetch =
      ParseRecordedFetch(FetchJson(observations));
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  ASSERT_EQ(fetch->observations.size(), static_cast<size_t>(kCount));

  for (int i = 0; i < kCount; ++i) {
    const Observation& observation = fetch->observations[i];
    ASSERT_EQ(observation.value, static_cast<uint64_t>(i));
    ASSERT_EQ(observation.series.labels()[0].second,
              absl::StrCat("z", i % 97));
  }
}

TEST(RecordedFetchTest, LargeInputReportsFirstError) {
  constexpr int kCount = 20000;
  std::vector<std::string> observations(kCount, ObservationJson());
  observations[17000] = ObservationJson("-1");
  observations[9000] = ObservationJson("-2");
  ExpectInvalid(ParseRecordedFetch(FetchJson(observations)),
                "observation 9000: field \"value\" must be >= 0, got -2");
}

}  // namespace
}  // namespace converge

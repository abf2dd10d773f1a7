#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "converge/sinks.h"

namespace converge {
namespace {

Sample MakeSample(std::string_view name, std::vector<Label> labels,
                  int64_t timestamp_ms, uint64_t value) {
  absl::StatusOr<SeriesKey> key = SeriesKey::Make(name, std::move(labels));
  EXPECT_TRUE(key.ok()) << key.status();
  return Sample{*key, timestamp_ms, value, SampleCause::kStable};
}

std::string JsonLine(const Sample& sample) {
  std::string line;
  AppendJsonLine(sample, &line);
  return line;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

TEST(AppendJsonLineTest, WritesAllFieldsOnOneLine) {
  const Sample sample = MakeSample("cloudflare_zone_requests_total",
                                   {{"zone", "example.com"}}, 1782327540000, 42);
  EXPECT_EQ(JsonLine(sample),
            "{\"name\":\"cloudflare_zone_requests_total\","
            "\"labels\":{\"zone\":\"example.com\"},"
            "\"value\":42,\"timestamp_ms\":1782327540000}\n");
}

TEST(AppendJsonLineTest, SortsLabelsByNameInByteOrder) {
  const Sample sample = MakeSample(
      "m", {{"zone", "z"}, {"colo", "c"}, {"Country", "DE"}}, 0, 1);
  EXPECT_EQ(JsonLine(sample),
            "{\"name\":\"m\",\"labels\":{\"Country\":\"DE\",\"colo\":\"c\","
            "\"zone\":\"z\"},\"value\":1,\"timestamp_ms\":0}\n");
}

TEST(AppendJsonLineTest, WritesNoLabelsAsEmptyObject) {
  EXPECT_EQ(JsonLine(MakeSample("m", {}, 5, 6)),
            "{\"name\":\"m\",\"labels\":{},\"value\":6,\"timestamp_ms\":5}\n");
}

TEST(AppendJsonLineTest, EscapesQuoteBackslashAndControlCharacters) {
  const Sample sample = MakeSample(
      "m", {{"path", std::string("a\"b\\c\n\t\x01\x1f\x7f", 10)}}, 0, 0);
  EXPECT_EQ(JsonLine(sample),
            "{\"name\":\"m\",\"labels\":{\"path\":"
            "\"a\\\"b\\\\c\\u000a\\u0009\\u0001\\u001f\x7f\"},"
            "\"value\":0,\"timestamp_ms\":0}\n");
}

TEST(AppendJsonLineTest, PassesUtf8Through) {
  const Sample sample = MakeSample("m", {{"city", "Zürich 東京"}}, 0, 0);
  EXPECT_NE(JsonLine(sample).find("\"city\":\"Zürich 東京\""),
            std::string::npos);
}

TEST(AppendJsonLineTest, WritesLargeValuesAsUnsignedIntegers) {
  const Sample sample =
      MakeSample("m", {}, -60000, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(JsonLine(sample),
            "{\"name\":\"m\",\"labels\":{},\"value\":18446744073709551615,"
            "\"timestamp_ms\":-60000}\n");
}

TEST(AppendJsonLineTest, ParsesBackToTheSameStrings) {
  // Every control character, a NUL byte, quote, backslash and UTF-8.
  std::string nasty;
  for (int c = 0; c < 0x20; ++c) nasty.push_back(static_cast<char>(c));
  nasty += "\"\\/ Zürich 東京 \x7f";
  const Sample sample = MakeSample("name \"quoted\"", {{"k\n", nasty}}, 7, 8);
  const std::string line = JsonLine(sample);

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(line).get(root), simdjson::SUCCESS) << line;
  std::string_view name;
  ASSERT_EQ(root["name"].get(name), simdjson::SUCCESS);
  EXPECT_EQ(name, "name \"quoted\"");
  std::string_view value;
  ASSERT_EQ(root["labels"]["k\n"].get(value), simdjson::SUCCESS);
  EXPECT_EQ(value, nasty);
  uint64_t number = 0;
  ASSERT_EQ(root["value"].get(number), simdjson::SUCCESS);
  EXPECT_EQ(number, 8u);
}

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "file_sink_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<Sink> OpenSink(const std::string& path) {
    std::unique_ptr<Sink> sink = MakeFileSink({.path = path});
    const absl::Status opened = sink->Open();
    EXPECT_TRUE(opened.ok()) << opened;
    return sink;
  }

  std::string dir_;
};

TEST_F(FileSinkTest, WritesOneLinePerSample) {
  const std::string path = dir_ + "/out.jsonl";
  const std::vector<Sample> first = {MakeSample("a", {{"zone", "x"}}, 60000, 1),
                                     MakeSample("b", {}, 120000, 2)};
  const std::vector<Sample> second = {MakeSample("c", {}, 180000, 3)};

  std::unique_ptr<Sink> sink = OpenSink(path);
  ASSERT_TRUE(sink->Push(first).ok());
  ASSERT_TRUE(sink->Push(second).ok());
  ASSERT_TRUE(sink->Close().ok());

  EXPECT_EQ(ReadFile(path),
            JsonLine(first[0]) + JsonLine(first[1]) + JsonLine(second[0]));
}

TEST_F(FileSinkTest, OpenTruncatesExistingFile) {
  const std::string path = dir_ + "/out.jsonl";
  std::ofstream(path) << "old contents that must go\n";

  std::unique_ptr<Sink> sink = OpenSink(path);
  const std::vector<Sample> batch = {MakeSample("a", {}, 0, 1)};
  ASSERT_TRUE(sink->Push(batch).ok());
  ASSERT_TRUE(sink->Close().ok());

  EXPECT_EQ(ReadFile(path), JsonLine(batch[0]));
}

TEST_F(FileSinkTest, DashWritesToStandardOutput) {
  std::unique_ptr<Sink> sink = OpenSink("-");
  const std::vector<Sample> batch = {MakeSample("a", {{"zone", "x"}}, 0, 1),
                                     MakeSample("b", {}, 60000, 2)};

  ::testing::internal::CaptureStdout();
  const absl::Status pushed = sink->Push(batch);
  const absl::Status closed = sink->Close();
  const std::string output = ::testing::internal::GetCapturedStdout();

  ASSERT_TRUE(pushed.ok()) << pushed;
  ASSERT_TRUE(closed.ok()) << closed;
  EXPECT_EQ(output, JsonLine(batch[0]) + JsonLine(batch[1]));
  EXPECT_NE(::fcntl(STDOUT_FILENO, F_GETFD), -1) << "stdout must stay open";
}

TEST_F(FileSinkTest, MissingDirectoryFailsOpenNamingThePath) {
  const std::string path = dir_ + "/no-such-dir/out.jsonl";
  std::unique_ptr<Sink> sink = MakeFileSink({.path = path});
  const absl::Status status = sink->Open();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_NE(status.message().find("No such file or directory"),
            std::string::npos)
      << status;
}

TEST_F(FileSinkTest, DirectoryPathFailsOpen) {
  std::unique_ptr<Sink> sink = MakeFileSink({.path = dir_});
  const absl::Status status = sink->Open();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find(dir_), std::string::npos) << status;
}

TEST_F(FileSinkTest, FullDiskIsRetryable) {
  // Writes to /dev/full fail with ENOSPC.
  std::unique_ptr<Sink> sink = OpenSink("/dev/full");
  const std::vector<Sample> batch = {MakeSample("a", {}, 0, 1)};
  const absl::Status status = sink->Push(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("/dev/full"), std::string::npos) << status;
  EXPECT_NE(status.message().find("No space left"), std::string::npos)
      << status;
}

TEST_F(FileSinkTest, FailedBatchIsCutOffTheFile) {
  const std::string path = dir_ + "/out.jsonl";
  const std::vector<Sample> first = {MakeSample("a", {}, 0, 1)};
  std::vector<Sample> second;
  for (int i = 0; i < 100; ++i) second.push_back(MakeSample("b", {}, i, i));

  std::unique_ptr<Sink> sink = OpenSink(path);
  ASSERT_TRUE(sink->Push(first).ok());

  // Limit the file size so that the second batch is written only in part.
  // With SIGXFSZ ignored, the write past the limit fails with EFBIG.
  const size_t limit = JsonLine(first[0]).size() + 100;
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const sighandler_t saved_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = saved;
  limited.rlim_cur = limit;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  const absl::Status status = sink->Push(second);
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, saved_handler);

  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_EQ(ReadFile(path), JsonLine(first[0]));

  // The next batch continues right after the last good line.
  ASSERT_TRUE(sink->Push(first).ok());
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(ReadFile(path), JsonLine(first[0]) + JsonLine(first[0]));
}

TEST_F(FileSinkTest, PushBeforeOpenFails) {
  std::unique_ptr<Sink> sink = MakeFileSink({.path = dir_ + "/out.jsonl"});
  const std::vector<Sample> batch = {MakeSample("a", {}, 0, 1)};
  EXPECT_EQ(sink->Push(batch).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(NullSinkTest, AcceptsEveryBatch) {
  std::unique_ptr<Sink> sink = MakeNullSink();
  const std::vector<Sample> batch = {MakeSample("a", {}, 0, 1),
                                     MakeSample("b", {}, 0, 2)};
  ASSERT_TRUE(sink->Open().ok());
  EXPECT_TRUE(sink->Push(batch).ok());
  EXPECT_TRUE(sink->Push({}).ok());
  EXPECT_TRUE(sink->Close().ok());
  EXPECT_EQ(sink->name(), "null");
}

}  // namespace
}  // namespace converge

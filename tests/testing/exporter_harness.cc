#include "tests/testing/exporter_harness.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace converge::harness {
namespace {

std::string SeriesText(const std::map<std::string, std::string>& labels) {
  std::string text;
  for (const auto& [name, value] : labels) {
    absl::StrAppend(&text, name, "=", value, ";");
  }
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> ExporterHarness::Start(
    const std::vector<std::string>& args, const std::string& tag) const {
  SubprocessOptions options;
  options.argv.push_back(binary_);
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  // Tests never use the default port: two runs must not collide.
  const bool has_listen = std::any_of(
      args.begin(), args.end(),
      [](const std::string& arg) { return arg.starts_with("--listen"); });
  if (!has_listen) options.argv.push_back("--listen=127.0.0.1:0");
  options.stdout_path = (dir_ / (tag + ".out")).string();
  options.stderr_path = (dir_ / (tag + ".err")).string();
  return Subprocess::Start(options);
}

ExporterResult ExporterHarness::Finish(Subprocess& process,
                                       const std::string& tag,
                                       absl::Duration timeout) const {
  ExporterResult result;
  absl::StatusOr<int> status = process.Wait(timeout);
  if (status.ok() && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  result.out = ReadFile(dir_ / (tag + ".out"));
  result.err = ReadFile(dir_ / (tag + ".err"));
  if (!status.ok()) {
    absl::StrAppend(&result.err, "\n[harness] ", status.status().ToString());
  }
  return result;
}

ExporterResult ExporterHarness::Run(const std::vector<std::string>& args,
                                    const std::string& tag) const {
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Start(args, tag);
  if (!process.ok()) {
    ExporterResult result;
    result.err = process.status().ToString();
    return result;
  }
  return Finish(**process, tag);
}

std::filesystem::path MakeTestDir(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat(prefix, "-", getpid(), "-",
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> SortedLines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

uint64_t SummaryField(const std::string& output, const std::string& key) {
  const size_t line_start = output.rfind("converge summary:");
  if (line_start == std::string::npos) return UINT64_MAX;
  const std::string needle = " " + key + "=";
  const size_t at = output.find(needle, line_start);
  if (at == std::string::npos) return UINT64_MAX;
  const size_t begin = at + needle.size();
  const size_t end = output.find_first_not_of("0123456789", begin);
  uint64_t value = 0;
  if (!absl::SimpleAtoi(output.substr(begin, end - begin), &value)) {
    return UINT64_MAX;
  }
  return value;
}

absl::StatusOr<std::set<Point>> FileSinkPoints(
    const std::filesystem::path& path) {
  std::set<Point> points;
  simdjson::ondemand::parser parser;
  std::ifstream in(path);
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    simdjson::padded_string padded(line);
    simdjson::ondemand::document doc;
    std::string_view name;
    simdjson::ondemand::object labels_object;
    uint64_t value = 0;
    int64_t timestamp_ms = 0;
    if (parser.iterate(padded).get(doc) || doc["name"].get(name) ||
        doc["labels"].get(labels_object)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ":", line_number, ": malformed line"));
    }
    std::map<std::string, std::string> labels;
    labels["__name__"] = std::string(name);
    for (auto field : labels_object) {
      std::string_view key;
      std::string_view text;
      if (field.unescaped_key().get(key) || field.value().get(text)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.string(), ":", line_number, ": malformed label"));
      }
      labels[std::string(key)] = std::string(text);
    }
    if (doc["value"].get(value) || doc["timestamp_ms"].get(timestamp_ms)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path.string(), ":", line_number, ": malformed value or timestamp"));
    }
    points.emplace(SeriesText(labels), timestamp_ms,
                   static_cast<double>(value));
  }
  return points;
}

std::set<Point> ExportedPoints(const std::vector<ExportedSeries>& exported) {
  std::set<Point> points;
  for (const ExportedSeries& series : exported) {
    const std::string text = SeriesText(series.metric);
    for (size_t i = 0; i < series.values.size() && i < series.timestamps.size();
         ++i) {
      points.emplace(text, series.timestamps[i], series.values[i]);
    }
  }
  return points;
}

}  // namespace converge::harness

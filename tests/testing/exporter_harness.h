// Helpers for tests that run the converge-exporter binary: start it with
// its output captured in a test folder, wait for it, read its summary line,
// and compare what its file sink wrote with what a receiver stored.

#ifndef CONVERGE_TESTS_TESTING_EXPORTER_HARNESS_H_
#define CONVERGE_TESTS_TESTING_EXPORTER_HARNESS_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/time.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/victoria_metrics.h"

namespace converge::harness {

struct ExporterResult {
  int exit_code = -1;  // -1 when the process did not exit normally in time
  std::string out;     // standard output
  std::string err;     // standard error: logs and the summary line
};

// One stored point: the series as sorted `name=value;` pairs (with
// `__name__`), the timestamp in Unix milliseconds, and the value.
using Point = std::tuple<std::string, int64_t, double>;

class ExporterHarness {
 public:
  // `binary` is the exporter's path; `dir` receives the captured output.
  ExporterHarness(std::string binary, std::filesystem::path dir)
      : binary_(std::move(binary)), dir_(std::move(dir)) {}

  // Starts the exporter with `args`; its output goes to <dir>/<tag>.out/.err.
  // Without a --listen argument the listener gets a free port.
  absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& args, const std::string& tag) const;

  // Waits up to `timeout` for `process` and collects its output.
  ExporterResult Finish(Subprocess& process, const std::string& tag,
                        absl::Duration timeout = absl::Minutes(5)) const;

  // Start() then Finish().
  ExporterResult Run(const std::vector<std::string>& args,
                     const std::string& tag) const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  const std::string binary_;
  const std::filesystem::path dir_;
};

// Returns an empty folder <temp>/<prefix>-<pid>-<test name> for the running
// GoogleTest test, removing what an earlier run left there.
std::filesystem::path MakeTestDir(const std::string& prefix);

std::string ReadFile(const std::filesystem::path& path);

// The non-empty lines of `path`, sorted.
std::vector<std::string> SortedLines(const std::filesystem::path& path);

// Reads `key=N` from the exporter's summary line in `output`; UINT64_MAX
// when the line or the key is missing.
uint64_t SummaryField(const std::string& output, const std::string& key);

// The points of a file sink's JSON lines. Fails on a malformed line.
absl::StatusOr<std::set<Point>> FileSinkPoints(
    const std::filesystem::path& path);

// The points VictoriaMetrics returned from an export, duplicates removed.
std::set<Point> ExportedPoints(const std::vector<ExportedSeries>& exported);

}  // namespace converge::harness

#endif  // CONVERGE_TESTS_TESTING_EXPORTER_HARNESS_H_

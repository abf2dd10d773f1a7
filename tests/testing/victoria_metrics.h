// A throwaway single-node VictoriaMetrics for tests: started on a free
// loopback port with a fresh data folder, queried over its HTTP API, and
// removed again when the object is destroyed.
//
// Thread safety: one thread at a time. The server itself may be written to
// from any thread (e.g. a sink under test) while the owner waits.

#ifndef CONVERGE_TESTS_TESTING_VICTORIA_METRICS_H_
#define CONVERGE_TESTS_TESTING_VICTORIA_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"

namespace converge::harness {

// One series as /api/v1/export returns it.
struct ExportedSeries {
  std::map<std::string, std::string> metric;  // labels, `__name__` included
  std::vector<double> values;
  std::vector<int64_t> timestamps;  // Unix milliseconds, one per value
};

class VictoriaMetrics {
 public:
  // Starts `victoria-metrics` (from PATH or /usr/bin) with a fresh data
  // folder, a free port on 127.0.0.1 and a 100-year retention, so samples
  // with old timestamps are kept. Returns once GET /health returns OK.
  // Returns kFailedPrecondition if the binary is not installed (the message
  // says to run scripts/install-deps.sh), kDeadlineExceeded if the server is
  // not healthy within 30 s, and an error with the end of the server's log if
  // it exits during startup.
  static absl::StatusOr<std::unique_ptr<VictoriaMetrics>> Start();

  VictoriaMetrics(const VictoriaMetrics&) = delete;
  VictoriaMetrics& operator=(const VictoriaMetrics&) = delete;

  // Kills the server and deletes its data folder.
  ~VictoriaMetrics();

  int port() const { return port_; }
  std::string base_url() const;   // http://127.0.0.1:<port>
  std::string write_url() const;  // the remote write endpoint
  const std::string& data_path() const { return data_path_; }

  // Makes every sample received so far visible to Export() (POST
  // /internal/force_flush); without it that takes about a second.
  absl::Status ForceFlush();

  // Returns every series matching the series selector `match`, e.g.
  // `{__name__=~"cloudflare_.*"}`, with all its samples
  // (GET /api/v1/export). Series come in the server's order.
  absl::StatusOr<std::vector<ExportedSeries>> Export(std::string_view match);

  // Freezes the server with SIGSTOP, so that connections hang rather than
  // fail, and thaws it with SIGCONT.
  absl::Status Pause();
  absl::Status Resume();

  // Stops the server gracefully, keeps it down for `down_time` (connections
  // are refused meanwhile), and starts it again on the same port and data
  // folder, then waits until it is healthy.
  absl::Status Restart(absl::Duration down_time = absl::ZeroDuration());

  // The last `max_bytes` of the server's log, for failure messages.
  std::string LogTail(size_t max_bytes = 2000) const;

 private:
  VictoriaMetrics(std::string binary, std::string temp_dir, int port);

  // Starts the process on port_ and waits until it is healthy.
  absl::Status Launch();
  absl::Status WaitHealthy(absl::Duration timeout);

  // Sends SIGTERM and waits for the exit, falling back to SIGKILL.
  absl::Status Stop();

  // Constant after construction.
  const std::string binary_;
  const std::string temp_dir_;   // removed by the destructor
  const std::string data_path_;  // inside temp_dir_
  const std::string log_path_;   // inside temp_dir_, the server's stderr
  const int port_;

  std::unique_ptr<Subprocess> process_;
  bool paused_ = false;
};

}  // namespace converge::harness

#endif  // CONVERGE_TESTS_TESTING_VICTORIA_METRICS_H_

// The exporter's HTTP listener: /metrics (Prometheus text format), /healthz
// (the process is alive) and /ready (the first fetches succeeded and the
// sink delivered or had nothing to deliver).
//
// The listener runs on cpp-httplib's own threads and only reads snapshots,
// so a slow or malformed client never blocks the pipeline. Read and write
// timeouts bound how long such a client keeps a connection thread busy.
//
// Thread safety: Start() and Stop() from one thread; handlers run on the
// server's threads and call the snapshot function concurrently.

#ifndef CONVERGE_SERVER_HTTP_SERVER_H_
#define CONVERGE_SERVER_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "converge/telemetry.h"
#include "server/metrics_text.h"

namespace httplib {
class Server;
}

namespace converge {

class HttpServer {
 public:
  using SnapshotFunction = std::function<PipelineSnapshot()>;

  // `listen` is HOST:PORT; port 0 picks a free port (see port()).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, SnapshotFunction snapshot, ExporterInfo info);

  ~HttpServer();  // stops the server
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  const std::string& host() const { return host_; }

  void Stop();

 private:
  HttpServer(std::string host, SnapshotFunction snapshot, ExporterInfo info);

  const std::string host_;
  const SnapshotFunction snapshot_;
  const ExporterInfo info_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

// Splits HOST:PORT (IPv6 as [::1]:PORT). Returns kInvalidArgument naming the
// text and the expected form.
absl::StatusOr<std::pair<std::string, int>> ParseListenAddress(
    const std::string& listen);

}  // namespace converge

#endif  // CONVERGE_SERVER_HTTP_SERVER_H_

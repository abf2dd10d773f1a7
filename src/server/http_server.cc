#include "server/http_server.h"

#include <utility>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace converge {
namespace {

// How long a client may take to send a request or read a response before
// its connection is closed.
constexpr int kClientTimeoutSeconds = 5;

std::string ReadyReason(const PipelineSnapshot& snapshot) {
  if (snapshot.stopping) return "shutting down";
  if (!snapshot.first_fetch_done) return "no fetch has succeeded yet";
  if (!snapshot.sink_ready) return "the sink has not delivered a batch yet";
  return "";
}

}  // namespace

absl::StatusOr<std::pair<std::string, int>> ParseListenAddress(
    const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid listen address \"", listen,
        "\": expected HOST:PORT such as 127.0.0.1:9464 or [::1]:9464"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, port);
}

HttpServer::HttpServer(std::string host, SnapshotFunction snapshot,
                       ExporterInfo info)
    : host_(std::move(host)),
      snapshot_(std::move(snapshot)),
      info_(std::move(info)),
      server_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& listen, SnapshotFunction snapshot, ExporterInfo info) {
  absl::StatusOr<std::pair<std::string, int>> address =
      ParseListenAddress(listen);
  if (!address.ok()) return address.status();

  std::unique_ptr<HttpServer> server(
      new HttpServer(address->first, std::move(snapshot), std::move(info)));
  httplib::Server& http = *server->server_;
  http.set_read_timeout(kClientTimeoutSeconds, 0);
  http.set_write_timeout(kClientTimeoutSeconds, 0);
  http.set_keep_alive_timeout(kClientTimeoutSeconds);

  HttpServer* self = server.get();
  http.Get("/metrics", [self](const httplib::Request&, httplib::Response& response) {
    response.set_content(RenderMetrics(self->snapshot_(), self->info_),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  http.Get("/ready", [self](const httplib::Request&, httplib::Response& response) {
    const std::string reason = ReadyReason(self->snapshot_());
    if (reason.empty()) {
      response.set_content("{\"ready\":true}\n", "application/json");
      return;
    }
    response.status = 503;
    response.set_content(
        absl::StrCat("{\"ready\":false,\"reason\":\"", reason, "\"}\n"),
        "application/json");
  });

  // Bind on this thread so that a taken port is reported as a start error.
  if (address->second == 0) {
    server->port_ = http.bind_to_any_port(address->first);
  } else if (http.bind_to_port(address->first, address->second)) {
    server->port_ = address->second;
  } else {
    server->port_ = -1;
  }
  if (server->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", listen,
        ": the address is in use or not available; choose another with "
        "--listen=HOST:PORT"));
  }
  server->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  while (!http.is_running()) std::this_thread::yield();
  spdlog::info("listening on {}:{} for /metrics, /healthz and /ready",
               server->host_, server->port_);
  return server;
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace converge

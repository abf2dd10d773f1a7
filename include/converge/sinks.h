// Factories for the built-in sinks (`file`, `remote-write`, `null`) and the
// encoders they use, exposed for tests and benchmarks.
//
// Thread safety: the returned sinks follow the Sink contract (one thread).
// The encoder functions are free of shared state.

#ifndef CONVERGE_SINKS_H_
#define CONVERGE_SINKS_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/sink.h"

namespace converge {

struct FileSinkOptions {
  std::string path = "-";  // "-" writes to standard output
};

// Writes one JSON object per line:
// {"name":...,"labels":{...},"value":...,"timestamp_ms":...}.
// Open() creates or truncates the file. Each Push() writes its batch with one
// write() call before returning, so Close() has nothing left to flush. Close()
// does not fsync.
//
// Errors name the path. Open() failures are kFailedPrecondition. A write that
// fails with ENOSPC, EDQUOT or EAGAIN is kUnavailable because it can clear up,
// and other write errors are kFailedPrecondition. A regular file is cut back
// to its last complete batch after a failed write, so a retry leaves no broken
// line.
std::unique_ptr<Sink> MakeFileSink(const FileSinkOptions& options);

// Counts and discards every batch.
std::unique_ptr<Sink> MakeNullSink();

struct RemoteWriteOptions {
  std::string url;  // e.g. http://127.0.0.1:8428/api/v1/write
  absl::Duration timeout = absl::Seconds(30);  // per request
  // Product name; the User-Agent header is "<user_agent>/<converge version>".
  std::string user_agent = "converge-exporter";

  // Credentials. Callers read them from files or the environment, never from
  // argv, and nothing logs them. A bearer token and basic auth are exclusive.
  std::string bearer_token;
  std::string basic_auth_username;
  std::string basic_auth_password;

  // TLS: a CA bundle to verify the receiver with instead of the system's,
  // and an explicit opt-out of verification (logged as a warning at Open()).
  std::string ca_file;
  bool insecure_skip_verify = false;
};

// Pushes Prometheus remote write 1.0 requests (snappy-compressed protobuf
// WriteRequest) over one kept-alive libcurl connection. Credentials can be
// given as user:password@ in the URL; every message and log line shows the
// URL with that part redacted. TLS peers are verified (libcurl's default).
//
// Push() returns OK for HTTP 2xx. Network errors, timeouts, HTTP 5xx and 429
// return kUnavailable, with the receiver's Retry-After attached (see
// RetryAfter()). Other 4xx return kInvalidArgument, whose message contains the
// HTTP status and the first 512 bytes of the receiver's response. Any other
// status returns kFailedPrecondition, because redirects are not followed. A
// timed-out request may still have been stored, so a retry can deliver a
// batch twice. An empty batch sends no request.
//
// Returns kInvalidArgument for a missing URL or one that is not http:// or
// https://, a timeout that is not positive, or an empty user_agent.
// REQUIRES: curl_global_init() was called, once per process, before the
// sink's Open().
absl::StatusOr<std::unique_ptr<Sink>> MakeRemoteWriteSink(
    const RemoteWriteOptions& options);

// Returns `url` with its user:password@ part replaced by REDACTED@, so that
// messages and logs never carry credentials.
std::string RedactUrl(std::string_view url);

// Appends the JSON line of `sample`, newline included, to `out`.
void AppendJsonLine(const Sample& sample, std::string* out);

// Serializes `batch` as a remote write WriteRequest protobuf: one TimeSeries
// per distinct series, in order of first appearance, holding that series'
// samples in batch order. Labels are sorted by name in byte order with
// `__name__` in its sorted place. Values are sent as doubles.
std::string EncodeWriteRequest(std::span<const Sample> batch);

// Snappy block-format compression, as remote write requires.
std::string SnappyCompress(const std::string& raw);

}  // namespace converge

#endif  // CONVERGE_SINKS_H_

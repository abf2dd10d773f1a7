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

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/sink.h"

namespace converge {

struct FileSinkOptions {
  std::string path = "-";  // "-" writes to standard output
};

// Writes one JSON object per line:
// {"name":...,"labels":{...},"value":...,"timestamp_ms":...}.
std::unique_ptr<Sink> MakeFileSink(const FileSinkOptions& options);

// Counts and discards every batch.
std::unique_ptr<Sink> MakeNullSink();

struct RemoteWriteOptions {
  std::string url;  // e.g. http://127.0.0.1:8428/api/v1/write
  absl::Duration timeout = absl::Seconds(30);  // per request
  std::string user_agent = "converge-exporter";
};

// Pushes Prometheus remote write 1.0 requests (snappy-compressed protobuf
// WriteRequest) over one kept-alive libcurl connection.
// Returns kInvalidArgument for a URL that is not http:// or https://.
absl::StatusOr<std::unique_ptr<Sink>> MakeRemoteWriteSink(
    const RemoteWriteOptions& options);

// Appends the JSON line of `sample`, newline included, to `out`.
void AppendJsonLine(const Sample& sample, std::string* out);

// Serializes `batch` as a remote write WriteRequest protobuf: one TimeSeries
// per sample, labels sorted by name in byte order with `__name__` in its
// sorted place.
std::string EncodeWriteRequest(std::span<const Sample> batch);

// Snappy block-format compression, as remote write requires.
std::string SnappyCompress(const std::string& raw);

}  // namespace converge

#endif  // CONVERGE_SINKS_H_

// Renders a pipeline snapshot in the Prometheus text exposition format.
//
// Every name has the `converge_` prefix and a base unit (seconds, bytes, or
// a plain count). Counters end in `_total`.

#ifndef CONVERGE_SERVER_METRICS_TEXT_H_
#define CONVERGE_SERVER_METRICS_TEXT_H_

#include <string>

#include "converge/telemetry.h"

namespace converge {

struct ExporterInfo {
  std::string version;
  std::string source;  // e.g. "sim"
  std::string sink;    // e.g. "remote-write"
  int shards = 0;
  int fetchers = 0;
  int threshold = 0;
};

std::string RenderMetrics(const PipelineSnapshot& snapshot,
                          const ExporterInfo& info);

}  // namespace converge

#endif  // CONVERGE_SERVER_METRICS_TEXT_H_

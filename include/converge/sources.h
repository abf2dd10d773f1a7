// Factories for the built-in sources: `replay` (recorded fetches from disk)
// and `sim` (a synthetic Cloudflare-like workload).
//
// Thread safety: the returned sources follow the Source contract.

#ifndef CONVERGE_SOURCES_H_
#define CONVERGE_SOURCES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/lanes.h"
#include "converge/source.h"

namespace converge {

// One recorded fetch: `{seq, start, end, observations: [{name, labels, value,
// bucket}]}` with RFC 3339 times carrying their own offset.
struct RecordedFetch {
  int64_t seq = 0;
  absl::Time start;
  absl::Time end;
  std::vector<Observation> observations;
};

// Parses one recorded fetch. Returns kInvalidArgument naming the field and,
// for observations, the index of the first malformed entry.
absl::StatusOr<RecordedFetch> ParseRecordedFetch(std::string_view json);

struct ReplayOptions {
  std::string dir;  // folder of *.json recorded fetches
};

// Loads every *.json file of `options.dir` and replays them in `seq` order,
// one tick per file with `now = end`, as fast as the pipeline takes them.
// Returns kNotFound for a missing folder or one without *.json files, and
// kInvalidArgument naming the file for a malformed one or a repeated `seq`.
absl::StatusOr<std::unique_ptr<Source>> MakeReplaySource(
    const ReplayOptions& options);

struct SimOptions {
  uint32_t zones = 10;             // number of simulated zones, >= 1
  uint32_t series_per_zone = 20;   // series of each zone, >= 1
  uint64_t seed = 1;               // same seed, same values
  absl::Duration duration = absl::Hours(1);  // simulated time to run, > 0
  absl::Time start;                // simulated process start (tick 0's now)
  bool realtime = false;           // pace ticks to the wall clock
  uint32_t zones_per_query = 10;   // zones one fetch covers, like Cloudflare
  LaneOptions lanes;
};

// Returns kInvalidArgument naming the field for invalid options.
absl::Status ValidateSimOptions(const SimOptions& options);

// A deterministic source that behaves like Cloudflare's per-minute analytics:
// a bucket shows about 4% of its final value after one minute, 45% after two,
// 90% after three and its final value after four, with rare later revisions.
absl::StatusOr<std::unique_ptr<Source>> MakeSimSource(
    const SimOptions& options);

}  // namespace converge

#endif  // CONVERGE_SOURCES_H_

// Turns the rows of a GraphQL response into observations, with the zero
// fill of status breakdowns.
//
// Zero fill: Cloudflare leaves a status out of a minute's breakdown when the
// minute had no request with it. For a minute the response did return, every
// status already seen for that zone and dataset (in an earlier tick, or in
// another minute of the same response) and missing from the minute is an
// observed 0. Minutes not returned, statuses never seen in the zone, and
// failed calls give no zeros. Only the status families are filled
// (cloudflare_zone_requests_status and cloudflare_zone_requests_status_v2).
// Filling the other breakdowns (countries, content types) would keep a
// series alive for every value ever seen in the zone.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_OBSERVATIONS_H_
#define CONVERGE_SOURCES_CLOUDFLARE_OBSERVATIONS_H_

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "converge/observation.h"
#include "converge/observation_batch.h"
#include "sources/cloudflare_metrics.h"
#include "sources/cloudflare_response.h"

namespace converge::cloudflare {

// The statuses seen per zone and dataset.
//
// Fetches read the committed set and record what they saw; Commit() makes
// the records count from the next tick on. Because no fetch runs while the
// scheduler plans a tick, every fetch of a tick reads the same committed
// set, and its observations do not depend on which fetch of the tick ran
// first.
//
// Thread safety: Committed() and Record() may be called from any thread;
// Commit() from the scheduler thread between ticks.
class KnownStatuses {
 public:
  using StatusSet = absl::btree_set<std::string>;  // sorted: stable output

  StatusSet Committed(const std::string& zone_id, Dataset dataset) const;
  void Record(const std::string& zone_id, Dataset dataset,
              const StatusSet& statuses);
  void Commit();

 private:
  using Key = std::pair<std::string, int>;

  mutable std::mutex mutex_;
  absl::flat_hash_map<Key, StatusSet> committed_;  // guarded by mutex_
  absl::flat_hash_map<Key, StatusSet> pending_;    // guarded by mutex_
};

// The input of one zone.
struct ZoneInput {
  const ZoneRows* rows = nullptr;
  std::string zone_label;          // the zone's name
  KnownStatuses::StatusSet known;  // committed statuses of the zone
};

// The output of one zone.
struct ZoneOutput {
  absl::Status status;  // a series key that failed to build
  ObservationBatch observations;
  KnownStatuses::StatusSet seen;  // statuses present in the rows
  uint64_t zero_filled = 0;       // observed zeros added
};

// Flattens every zone of one response of `dataset`, keeping the metrics in
// `metrics`. Zones run in parallel (oneTBB) when the response has at least
// kParallelMinRows rows, serially otherwise and in ThreadSanitizer builds.
// The output is in the order of `zones`, whatever ran first.
std::vector<ZoneOutput> FlattenZones(std::span<const ZoneInput> zones,
                                     Dataset dataset, const MetricSet& metrics);

// Below this many rows the cost of spawning tasks outweighs the key building
// they would share.
inline constexpr size_t kParallelMinRows = 2048;

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_OBSERVATIONS_H_

// Zone discovery through the REST API and the selection of the zones one
// exporter instance queries: exclusions, inactive zones, and the share a
// cluster member owns.
//
// GET <rest>/zones?page=N&per_page=50 lists the zones the credentials can
// read, page by page, until `result_info.total_pages`. GET <rest>/zones/<id>
// reads one zone given by --zones. Both respond with
// {"success": bool, "errors": [{"code", "message"}], "result": ...}.
//
// Thread safety: free functions. The client they use is thread-safe.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_ZONES_H_
#define CONVERGE_SOURCES_CLOUDFLARE_ZONES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sources/cloudflare_client.h"

namespace converge::cloudflare {

struct ZoneInfo {
  std::string id;      // the zone tag GraphQL filters on
  std::string name;    // e.g. example.com; the `zone` label
  std::string status;  // e.g. active, pending
  std::string plan;    // plan.legacy_id (free, pro, business, enterprise),
                       // or plan.name when the API sends no legacy_id
  bool free_plan = false;
};

// Zones per page of the listing: the largest page the zones API serves.
inline constexpr int kZonesPerPage = 50;

// One page of the listing.
struct ZonesPage {
  std::vector<ZoneInfo> zones;
  int page = 1;
  int total_pages = 1;
};

// Parses a listing page. Returns kInvalidArgument for a malformed body, and
// the API's own error (code and message) for {"success": false}.
absl::StatusOr<ZonesPage> ParseZonesPage(std::string_view body);

// Parses GET /zones/<id>.
absl::StatusOr<ZoneInfo> ParseZone(std::string_view body);

// Lists every zone the credentials can read, following the pages.
// Transient failures (timeouts, 429, 5xx) are retried a few times with a
// short backoff, and then the last error is returned, naming the page.
absl::StatusOr<std::vector<ZoneInfo>> ListZones(CloudflareClient& client,
                                                const std::string& rest_url);

// Reads the zones with the given IDs. Returns kNotFound naming a zone the
// credentials cannot read.
absl::StatusOr<std::vector<ZoneInfo>> GetZones(
    CloudflareClient& client, const std::string& rest_url,
    const std::vector<std::string>& ids);

// The zones left to query and how many were left out, by reason.
struct ZoneSelection {
  std::vector<ZoneInfo> zones;  // in the order given
  size_t excluded = 0;          // named by `exclude` (ID or name)
  size_t inactive = 0;          // status other than "active": no analytics
  size_t not_owned = 0;         // owned by another cluster member
};

// Keeps the active zones that `exclude` does not name and that cluster
// member `member_index` of `members` owns.
ZoneSelection SelectZones(std::vector<ZoneInfo> zones,
                          const std::vector<std::string>& exclude,
                          uint32_t members, uint32_t member_index);

// The cluster member (0 .. members - 1) that owns `zone_id`, by rendezvous
// hashing: every member scores the zone with a stable hash of (zone ID,
// member index) and the highest score wins. The owner depends only on the
// zone ID and the member count, and growing the cluster by one member moves
// only the zones the new member wins.
uint32_t ZoneOwner(std::string_view zone_id, uint32_t members);

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_ZONES_H_

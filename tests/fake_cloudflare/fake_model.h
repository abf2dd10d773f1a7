// The data the fake Cloudflare API serves, and the metric series an exporter
// should store once every minute has settled. The per-minute zone analytics
// are deterministic and grow after the minute ends, then settle, as
// Cloudflare's do: about 4% of the final value one minute after the minute
// started, 45% after two, 90% after three, and the final value from four on.
//
// The series list (ExpectedSeries) is written from the API's field names
// without the exporter's code, so tests that compare against it check the
// exporter's mapping too.
//
// Thread safety: a FakeModel is immutable after construction.

#ifndef CONVERGE_TESTS_FAKE_CLOUDFLARE_FAKE_MODEL_H_
#define CONVERGE_TESTS_FAKE_CLOUDFLARE_FAKE_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace converge::fake_cloudflare {

struct FakeZone {
  std::string id;                   // 32 hex characters, like Cloudflare's
  std::string name;                 // e.g. zone-3.example
  std::string plan = "enterprise";  // free, pro, business or enterprise
  std::string status = "active";

  bool free_plan() const { return plan == "free"; }
};

// `count` zones named zone-<i>.example with stable IDs derived from `seed`.
// Every `free_every`-th zone (1-based: zone free_every - 1, ...) is on the
// Free plan; 0 means none.
std::vector<FakeZone> MakeZones(int count, int free_every = 0,
                                uint64_t seed = 1);

// One zone's analytics for one minute, as the API reports them. Map entries
// and groups whose every value is 0 are left out, as Cloudflare does.
struct MinuteData {
  uint64_t requests = 0;
  uint64_t cached_requests = 0;
  uint64_t encrypted_requests = 0;
  uint64_t bytes = 0;
  uint64_t cached_bytes = 0;
  uint64_t encrypted_bytes = 0;
  uint64_t page_views = 0;
  uint64_t threats = 0;
  uint64_t uniques = 0;

  struct ContentType {
    std::string name;
    uint64_t requests = 0;
    uint64_t bytes = 0;
  };
  struct Country {
    std::string code;
    uint64_t requests = 0;
    uint64_t bytes = 0;
    uint64_t threats = 0;
  };
  struct DnsGroup {
    std::string response_code;
    std::string query_type;
    std::string ip_version;
    uint64_t count = 0;
    uint64_t stale = 0;
    uint64_t uncached = 0;
  };
  std::vector<ContentType> content_types;
  std::vector<Country> countries;
  std::vector<std::pair<int, uint64_t>> statuses;  // edge status, requests
  std::vector<std::pair<std::string, uint64_t>> browsers;      // page views
  std::vector<std::pair<std::string, uint64_t>> threat_paths;  // requests
  std::vector<DnsGroup> dns;
};

class FakeModel {
 public:
  explicit FakeModel(uint64_t seed) : seed_(seed) {}

  // The settled values of zone `zone_index` for the minute starting at
  // `minute_start`.
  MinuteData Final(size_t zone_index, absl::Time minute_start) const;

  // What the API shows `age` after the minute started: nothing before the
  // minute has ended, then the growing shares of Final().
  std::optional<MinuteData> At(size_t zone_index, absl::Time minute_start,
                               absl::Duration age) const;

  // Every status a zone can report; the rare ones are absent from many
  // minutes.
  static const std::vector<int>& StatusCatalog();

 private:
  const uint64_t seed_;
};

// A metric sample an exporter should store for a settled minute.
struct ExpectedPoint {
  std::string name;
  std::map<std::string, std::string> labels;  // `zone` included
  int64_t timestamp_ms = 0;                   // the minute's start
  uint64_t value = 0;
};

// The series of every zone for the minutes starting in [from, to), by the
// metric names of lablabs/cloudflare-exporter plus the adaptive-status and
// DNS names of the Go exporter converge replaces. Free-plan zones have no
// httpRequests1mGroups series. Zero-filled status series are not listed:
// a status a minute left out may be stored as 0 when the zone has it in
// StatusCatalog() (see IsZeroFillable).
std::vector<ExpectedPoint> ExpectedSeries(const FakeModel& model,
                                          const std::vector<FakeZone>& zones,
                                          absl::Time from, absl::Time to);

// Whether a stored point of value 0 that ExpectedSeries does not list is a
// legitimate zero fill: a status series of a status in the catalog.
bool IsZeroFillable(const std::string& name,
                    const std::map<std::string, std::string>& labels);

}  // namespace converge::fake_cloudflare

#endif  // CONVERGE_TESTS_FAKE_CLOUDFLARE_FAKE_MODEL_H_

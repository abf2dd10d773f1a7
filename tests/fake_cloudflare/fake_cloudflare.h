// A fake of the Cloudflare API on 127.0.0.1, for tests and demos: the
// GraphQL Analytics endpoint for the three datasets the cloudflare source
// queries, and the REST zone listing with pagination.
//
// GraphQL: POST /client/v4/graphql with {"query", "variables": {zoneTags,
// start, end, limit}}. The fake parses the query's selection sets and
// returns only the fields requested, in the real response shape
// (data.viewer.zones[].<dataset>[], errors[] with message, path and
// extensions). It honours `limit` per zone, so a client that sets a small
// row limit sees real responses at the limit. Free-plan zones get the
// plan error for httpRequests1mGroups, naming the zone by its position.
//
// REST: GET /client/v4/zones?page=N&per_page=M (at most max_per_page per
// page) and GET /client/v4/zones/<id>.
//
// Time: each minute's values grow after it ends and settle four minutes
// after it started (FakeModel). The fake's "now" is either the wall clock
// (from `start`, `speed` times as fast), or, for deterministic tests, the
// latest `end` any GraphQL query asked for (never before `start`): a client
// with a simulated clock then sees exactly the data its own clock implies.
//
// Faults are scripted per request and consumed in order (see Fault).
//
// Thread safety: every method may be called from any thread; requests are
// served on httplib's threads.

#ifndef CONVERGE_TESTS_FAKE_CLOUDFLARE_FAKE_CLOUDFLARE_H_
#define CONVERGE_TESTS_FAKE_CLOUDFLARE_FAKE_CLOUDFLARE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/fake_cloudflare/fake_model.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace converge::fake_cloudflare {

enum class ClockMode {
  kWall,            // start + (wall time since Start()) * speed
  kFollowRequests,  // max(start, latest `end` of any GraphQL query)
};

struct FakeOptions {
  std::vector<FakeZone> zones;
  uint64_t seed = 1;

  // Accepted credentials. Empty token and empty key accept any request.
  std::string token;
  std::string email;
  std::string api_key;

  ClockMode clock = ClockMode::kFollowRequests;
  absl::Time start = absl::UnixEpoch();
  double speed = 1.0;  // kWall only

  int max_per_page = 50;  // the zones API's largest page
};

enum class FaultKind {
  kHttp429,          // 429, with Retry-After when retry_after_seconds >= 0
  kBudgetExceeded,   // 200 with a rate limiter budget error
  kHttp503,          // 503 with a plain-text body
  kHtml502,          // 502 with an HTML error page
  kZoneDenied,       // 200 whose error names `zone_id` by its position
  kDataTooOld,       // 200 whose retention error names `zone_id`
  kSlow,             // responds normally after `delay`
  kTruncatedJson,    // 200 whose body stops in the middle
  kNotJson,          // 200 whose body is not JSON at all
  kGraphqlError,     // 200 with an error that names no zone
  kEchoCredentials,  // 200 whose error message repeats the auth headers
};

struct Fault {
  FaultKind kind = FaultKind::kHttp503;
  // Which requests it hits: a dataset name (e.g. "httpRequests1mGroups"),
  // "" for any GraphQL query, or "zones" for the REST zone API.
  std::string target;
  std::string zone_id;  // kZoneDenied, kDataTooOld: only queries with it
  int retry_after_seconds = -1;  // kHttp429
  absl::Duration delay;          // kSlow
  int times = 1;                 // requests it hits; -1 for every one
};

// Shorthands for scripting faults.
Fault FaultOf(FaultKind kind, std::string target = "", int times = 1);
Fault Http429Fault(int retry_after_seconds, int times = 1);
Fault ZoneDeniedFault(std::string dataset, std::string zone_id, int times);
Fault SlowFault(absl::Duration delay);

// One request as the fake saw it.
struct LoggedRequest {
  std::string path;
  std::string dataset;                 // GraphQL only
  std::vector<std::string> zone_tags;  // GraphQL only
  absl::Time start;                    // GraphQL only
  absl::Time end;
  int64_t limit = 0;
  std::set<std::string> fields;  // selected fields as dotted paths
  std::string authorization;     // the Authorization header as received
  int status = 0;                // HTTP status of the response
  bool faulted = false;          // a scripted fault responded
};

class FakeCloudflare {
 public:
  // Starts serving on 127.0.0.1:`port` (0 picks a free port).
  static absl::StatusOr<std::unique_ptr<FakeCloudflare>> Start(
      FakeOptions options, int port = 0);
  ~FakeCloudflare();

  FakeCloudflare(const FakeCloudflare&) = delete;
  FakeCloudflare& operator=(const FakeCloudflare&) = delete;

  int port() const { return port_; }
  std::string graphql_url() const;  // http://127.0.0.1:<port>/client/v4/graphql
  std::string rest_url() const;     // http://127.0.0.1:<port>/client/v4

  void AddFault(Fault fault);
  std::vector<LoggedRequest> requests() const;
  size_t graphql_requests() const;

  const FakeModel& model() const { return model_; }
  const std::vector<FakeZone>& zones() const { return options_.zones; }

  // The fake's current time (see ClockMode).
  absl::Time Now() const;

  // Stops serving; slow answers in flight end at once. Idempotent.
  void Stop();

 private:
  explicit FakeCloudflare(FakeOptions options);

  void ServeGraphql(const httplib::Request& request,
                    httplib::Response& response);
  void ServeZoneList(const httplib::Request& request,
                     httplib::Response& response);
  void ServeZone(const httplib::Request& request, httplib::Response& response);

  // Whether the request carries the accepted credentials.
  bool Authorized(const httplib::Request& request) const;
  // Takes the first scripted fault that hits a request on `target` with
  // `zone_tags`, if any.
  bool TakeFault(const std::string& target,
                 const std::vector<std::string>& zone_tags, Fault* fault);
  void Log(LoggedRequest entry);

  const FakeOptions options_;
  const FakeModel model_;
  const absl::Time wall_start_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::condition_variable stopping_cv_;
  bool stopping_ = false;           // guarded by mutex_
  absl::Time latest_end_;           // guarded by mutex_
  std::deque<Fault> faults_;        // guarded by mutex_
  std::vector<LoggedRequest> log_;  // guarded by mutex_
};

}  // namespace converge::fake_cloudflare

#endif  // CONVERGE_TESTS_FAKE_CLOUDFLARE_FAKE_CLOUDFLARE_H_

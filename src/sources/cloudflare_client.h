// HTTP transport to the Cloudflare API: authenticated GET and POST over
// libcurl, with TLS verification on, no redirects (a redirect could carry the
// credentials to another host) and a timeout per request.
//
// Thread safety: Get() and Post() may be called from any number of threads
// at once. Each call borrows an idle libcurl easy handle from a pool and
// gives it back, so there are at most as many handles as concurrent callers
// (one per fetcher thread) and each keeps its connection alive between calls.
// REQUIRES: curl_global_init() before the first call.

#ifndef CONVERGE_SOURCES_CLOUDFLARE_CLIENT_H_
#define CONVERGE_SOURCES_CLOUDFLARE_CLIENT_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "converge/sources.h"
#include "converge/time_util.h"

namespace converge::cloudflare {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
  std::optional<absl::Duration> retry_after;  // from Retry-After
};

// The cause of a call that failed before an HTTP status arrived.
enum class TransportFailure { kNone, kTimeout, kConnection, kTooLarge };

class CloudflareClient {
 public:
  // `timeout` bounds each request.
  CloudflareClient(CloudflareCredentials credentials, absl::Duration timeout);
  ~CloudflareClient();

  CloudflareClient(const CloudflareClient&) = delete;
  CloudflareClient& operator=(const CloudflareClient&) = delete;

  // Sends a request and returns the response, whatever its HTTP status.
  // Returns kDeadlineExceeded after the timeout, kResourceExhausted for a
  // body larger than kMaxResponseBytes, kUnavailable for other transfer
  // failures. `*failure` (when not null) receives the cause. No message
  // contains the credentials.
  absl::StatusOr<HttpResponse> Post(const std::string& url,
                                    const std::string& json_body,
                                    TransportFailure* failure = nullptr);
  absl::StatusOr<HttpResponse> Get(const std::string& url,
                                   TransportFailure* failure = nullptr);

  // Returns `text` with every occurrence of a secret of the credentials
  // replaced by REDACTED, for text that came from the server (an error page
  // might echo a request header).
  std::string Redact(std::string_view text) const;

  // The largest response body accepted.
  static constexpr size_t kMaxResponseBytes = 256u << 20;

 private:
  class Handle;

  absl::StatusOr<HttpResponse> Perform(const std::string& url,
                                       const std::string* json_body,
                                       TransportFailure* failure);
  std::unique_ptr<Handle> Borrow();
  void GiveBack(std::unique_ptr<Handle> handle);

  // Constant after construction.
  const CloudflareCredentials credentials_;
  const absl::Duration timeout_;
  const std::vector<std::string> auth_headers_;  // "Name: value" lines

  std::mutex mutex_;
  std::vector<std::unique_ptr<Handle>> idle_;  // guarded by mutex_
};

// Checks an API URL given as `flag`: http or https, and https unless the host
// is 127.0.0.1, ::1 or localhost, so credentials never cross a network in
// clear text. Returns kInvalidArgument naming the flag and the URL.
absl::Status ValidateApiUrl(std::string_view flag, const std::string& url);

// ParseRetryAfter() (converge/time_util.h) reads the Retry-After header.
using ::converge::ParseRetryAfter;

}  // namespace converge::cloudflare

#endif  // CONVERGE_SOURCES_CLOUDFLARE_CLIENT_H_

#include "sources/cloudflare_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "core/absl_compat.h"
#include "core/secret_file.h"

#ifndef CONVERGE_VERSION
#define CONVERGE_VERSION "dev"
#endif

namespace converge {
namespace cloudflare {
namespace {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

std::vector<std::string> AuthHeaders(const CloudflareCredentials& credentials) {
  if (!credentials.api_token.empty()) {
    return {absl::StrCat("Authorization: Bearer ", credentials.api_token)};
  }
  return {absl::StrCat("X-Auth-Email: ", credentials.email),
          absl::StrCat("X-Auth-Key: ", credentials.api_key)};
}

// The URL without query string and userinfo, for messages.
std::string UrlForMessages(const std::string& url) {
  std::string text = url.substr(0, url.find('?'));
  const size_t scheme_end = text.find("://");
  const size_t at = text.find('@');
  if (scheme_end != std::string::npos && at != std::string::npos &&
      at < text.find('/', scheme_end + 3)) {
    text = text.substr(0, scheme_end + 3) + "REDACTED@" + text.substr(at + 1);
  }
  return text;
}

}  // namespace

// One libcurl easy handle with the state of the request it is performing.
class CloudflareClient::Handle {
 public:
  static std::unique_ptr<Handle> Create(const std::vector<std::string>& auth) {
    auto handle = std::unique_ptr<Handle>(new Handle());
    handle->curl_.reset(curl_easy_init());
    if (handle->curl_ == nullptr) return nullptr;

    curl_slist* headers = nullptr;
    std::vector<std::string> lines = auth;
    lines.emplace_back("Accept: application/json");
    lines.emplace_back("Expect:");
    for (const std::string& line : lines) {
      curl_slist* extended = curl_slist_append(headers, line.c_str());
      if (extended == nullptr) {
        curl_slist_free_all(headers);
        return nullptr;
      }
      headers = extended;
    }
    handle->get_headers_.reset(headers);

    curl_slist* post_headers = nullptr;
    lines.emplace_back("Content-Type: application/json");
    for (const std::string& line : lines) {
      curl_slist* extended = curl_slist_append(post_headers, line.c_str());
      if (extended == nullptr) {
        curl_slist_free_all(post_headers);
        return nullptr;
      }
      post_headers = extended;
    }
    handle->post_headers_.reset(post_headers);
    return handle;
  }

  CURL* curl() { return curl_.get(); }
  curl_slist* get_headers() { return get_headers_.get(); }
  curl_slist* post_headers() { return post_headers_.get(); }
  char* error_buffer() { return error_buffer_; }

  // Per-request state, reset before each transfer.
  void Reset() {
    body.clear();
    content_type.clear();
    retry_after.clear();
    too_large = false;
    error_buffer_[0] = '\0';
  }

  static size_t OnBody(char* data, size_t size, size_t count, void* self) {
    auto* handle = static_cast<Handle*>(self);
    const size_t bytes = size * count;
    if (handle->body.size() + bytes > kMaxResponseBytes) {
      handle->too_large = true;
      return 0;  // aborts the transfer
    }
    handle->body.append(data, bytes);
    return bytes;
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* self) {
    auto* handle = static_cast<Handle*>(self);
    const size_t bytes = size * count;
    const absl::string_view line(data, bytes);

    // A status line starts a new response (after "100 Continue"), so only the
    // final response's headers are kept.
    if (absl::StartsWith(line, "HTTP/")) {
      handle->retry_after.clear();
      handle->content_type.clear();
    } else if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
      handle->retry_after = std::string(absl::StripAsciiWhitespace(
          line.substr(std::string_view("retry-after:").size())));
    } else if (absl::StartsWithIgnoreCase(line, "content-type:")) {
      handle->content_type = std::string(absl::StripAsciiWhitespace(
          line.substr(std::string_view("content-type:").size())));
    }
    return bytes;
  }

  std::string body;
  std::string content_type;
  std::string retry_after;
  bool too_large = false;

 private:
  Handle() = default;

  std::unique_ptr<curl_slist, CurlListDeleter> get_headers_;
  std::unique_ptr<curl_slist, CurlListDeleter> post_headers_;
  char error_buffer_[CURL_ERROR_SIZE] = {};
  // Declared last, so it is cleaned up before the lists it points to.
  std::unique_ptr<CURL, CurlEasyDeleter> curl_;
};

CloudflareClient::CloudflareClient(CloudflareCredentials credentials,
                                   absl::Duration timeout)
    : credentials_(std::move(credentials)),
      timeout_(timeout),
      auth_headers_(AuthHeaders(credentials_)) {}

CloudflareClient::~CloudflareClient() = default;

std::unique_ptr<CloudflareClient::Handle> CloudflareClient::Borrow() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  return Handle::Create(auth_headers_);
}

void CloudflareClient::GiveBack(std::unique_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(std::move(handle));
}

absl::StatusOr<HttpResponse> CloudflareClient::Post(
    const std::string& url, const std::string& json_body,
    TransportFailure* failure) {
  return Perform(url, &json_body, failure);
}

absl::StatusOr<HttpResponse> CloudflareClient::Get(const std::string& url,
                                                   TransportFailure* failure) {
  return Perform(url, nullptr, failure);
}

absl::StatusOr<HttpResponse> CloudflareClient::Perform(
    const std::string& url, const std::string* json_body,
    TransportFailure* failure) {
  TransportFailure ignored;
  if (failure == nullptr) failure = &ignored;
  *failure = TransportFailure::kNone;
  const std::string where = UrlForMessages(url);

  std::unique_ptr<Handle> handle = Borrow();
  if (handle == nullptr) {
    *failure = TransportFailure::kConnection;
    return absl::ResourceExhaustedError(
        "failed to create a libcurl handle; curl_global_init() must run "
        "before the first request");
  }
  handle->Reset();

  // Configure this transfer. The handle keeps its connection between calls.
  CURL* curl = handle->curl();
  CURLcode code = CURLE_OK;
  const auto set = [&code, curl](CURLoption option, auto value) {
    if (code == CURLE_OK) code = curl_easy_setopt(curl, option, value);
  };
  const std::string user_agent =
      absl::StrCat("converge-exporter/", CONVERGE_VERSION);
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  set(CURLOPT_USERAGENT, user_agent.c_str());
  // gzip only: it shrinks the JSON about 20 times. Brotli at cpp-httplib's
  // settings (the test fake) cost about 0.6 s per 300 kB response when
  // measured with curl on a 2-core test machine.
  set(CURLOPT_ACCEPT_ENCODING, "gzip");
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(
                              1, absl::ToInt64Milliseconds(timeout_))));
  // Without NOSIGNAL libcurl times out name lookups with SIGALRM, which is
  // unsafe in a multi-threaded process.
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_ERRORBUFFER, handle->error_buffer());
  set(CURLOPT_WRITEFUNCTION, &Handle::OnBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(handle.get()));
  set(CURLOPT_HEADERFUNCTION, &Handle::OnHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(handle.get()));
  if (json_body != nullptr) {
    set(CURLOPT_POST, 1L);
    set(CURLOPT_HTTPHEADER, handle->post_headers());
    set(CURLOPT_POSTFIELDS, json_body->data());
    set(CURLOPT_POSTFIELDSIZE_LARGE,
        static_cast<curl_off_t>(json_body->size()));
  } else {
    set(CURLOPT_HTTPGET, 1L);
    set(CURLOPT_HTTPHEADER, handle->get_headers());
  }
  if (code != CURLE_OK) {
    *failure = TransportFailure::kConnection;
    return absl::InvalidArgumentError(
        absl::StrCat("failed to configure libcurl for ", where, ": ",
                     curl_easy_strerror(code)));
  }

  // Transfer.
  code = curl_easy_perform(curl);
  if (code != CURLE_OK) {
    // libcurl's texts name the host, never the request headers.
    const std::string detail = handle->error_buffer()[0] != '\0'
                                   ? handle->error_buffer()
                                   : curl_easy_strerror(code);
    const bool too_large = handle->too_large;
    handle.reset();  // a failed transfer may leave the connection unusable
    if (too_large) {
      *failure = TransportFailure::kTooLarge;
      return absl::ResourceExhaustedError(
          absl::StrCat("response from ", where, " is larger than ",
                       kMaxResponseBytes, " bytes"));
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
      *failure = TransportFailure::kTimeout;
      return absl::DeadlineExceededError(
          absl::StrCat("request to ", where, " timed out after ",
                       absl::FormatDuration(timeout_), ": ", detail));
    }
    *failure = TransportFailure::kConnection;
    return absl::UnavailableError(
        absl::StrCat("request to ", where, " failed: ", detail));
  }

  // Response.
  HttpResponse response;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(handle->body);
  response.content_type = std::move(handle->content_type);
  if (!handle->retry_after.empty()) {
    response.retry_after = ParseRetryAfter(handle->retry_after, absl::Now());
  }
  GiveBack(std::move(handle));
  return response;
}

std::string CloudflareClient::Redact(std::string_view text) const {
  std::vector<std::pair<absl::string_view, absl::string_view>> secrets;
  for (const std::string* secret :
       {&credentials_.api_token, &credentials_.api_key}) {
    if (!secret->empty()) secrets.emplace_back(*secret, "REDACTED");
  }
  return absl::StrReplaceAll(ToAbsl(text), secrets);
}

absl::Status ValidateApiUrl(std::string_view flag, const std::string& url) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid --", ToAbsl(flag), "=", UrlForMessages(url), ": ", why));
  };
  std::unique_ptr<CURLU, CurlUrlDeleter> parsed(curl_url());
  if (parsed == nullptr) {
    return absl::ResourceExhaustedError("failed to allocate a libcurl URL");
  }
  if (curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(),
                   CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return invalid(
        "not a valid URL; expected e.g. "
        "https://api.cloudflare.com/client/v4/graphql");
  }

  const auto part = [&](CURLUPart which) {
    char* value = nullptr;
    std::string text;
    if (curl_url_get(parsed.get(), which, &value, 0) == CURLUE_OK) {
      text = value;
      curl_free(value);
    }
    return absl::AsciiStrToLower(text);
  };
  const std::string scheme = part(CURLUPART_SCHEME);
  const std::string host = part(CURLUPART_HOST);
  if (scheme == "https") return absl::OkStatus();
  if (scheme != "http") return invalid("the scheme must be https://");
  if (host == "127.0.0.1" || host == "localhost" || host == "[::1]") {
    return absl::OkStatus();
  }
  return invalid(
      "plain http would send the API credentials unencrypted; use https:// "
      "(http:// is accepted only for 127.0.0.1, ::1 and localhost)");
}


}  // namespace cloudflare

absl::StatusOr<CloudflareCredentials> LoadCloudflareCredentials(
    const std::string& token_file) {
  CloudflareCredentials credentials;

  // A token file wins over the environment.
  if (!token_file.empty()) {
    absl::StatusOr<std::string> token =
        ReadSecretFile(token_file, "--cf-api-token-file", "API token");
    if (!token.ok()) return token.status();
    credentials.api_token = *std::move(token);
    return credentials;
  }

  const auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return value == nullptr ? std::string()
                            : std::string(absl::StripAsciiWhitespace(value));
  };
  credentials.api_token = env("CF_API_TOKEN");
  if (!credentials.api_token.empty()) return credentials;

  credentials.email = env("CF_API_EMAIL");
  credentials.api_key = env("CF_API_KEY");
  if (!credentials.email.empty() && !credentials.api_key.empty()) {
    return credentials;
  }
  return absl::InvalidArgumentError(
      "missing Cloudflare credentials: set CF_API_TOKEN, pass "
      "--cf-api-token-file=PATH, or set both CF_API_EMAIL and CF_API_KEY "
      "(the legacy Global API Key)");
}

}  // namespace converge

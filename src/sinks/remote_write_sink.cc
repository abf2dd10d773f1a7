// The remote write sink: Prometheus remote write 1.0 requests (snappy block
// compressed protobuf WriteRequest) sent over one kept-alive libcurl handle.

#include <curl/curl.h>
#include <snappy.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "converge/sinks.h"
#include "converge/time_util.h"
#include "core/absl_compat.h"
#include "remote.pb.h"

// CMakeLists.txt passes the project version.
#ifndef CONVERGE_VERSION
#error "CONVERGE_VERSION must be defined by the build"
#endif

namespace converge {
namespace {

constexpr std::string_view kNameLabel = "__name__";
constexpr char kExampleUrl[] = "http://127.0.0.1:8428/api/v1/write";

// How much of a receiver's error response goes into a status message.
constexpr size_t kMaxErrorBodyBytes = 512;

// Checks that `url` parses and uses http or https.
absl::Status ValidateUrl(const std::string& url) {
  const std::string redacted = RedactUrl(url);
  if (url.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "missing remote write URL; pass one like ", kExampleUrl));
  }

  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(),
                                                             &curl_url_cleanup);
  if (handle == nullptr) {
    return absl::ResourceExhaustedError("failed to allocate a libcurl URL");
  }
  const CURLUcode parsed = curl_url_set(handle.get(), CURLUPART_URL,
                                        url.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (parsed != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid remote write URL \"", redacted, "\": ",
        curl_url_strerror(parsed), "; pass one like ", kExampleUrl));
  }

  char* scheme = nullptr;
  std::string scheme_text;
  if (curl_url_get(handle.get(), CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
    scheme_text = scheme;
    curl_free(scheme);
  }
  if (!absl::EqualsIgnoreCase(scheme_text, "http") &&
      !absl::EqualsIgnoreCase(scheme_text, "https")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid remote write URL \"", redacted,
        "\": the scheme must be http:// or https://, e.g. ", kExampleUrl));
  }
  return absl::OkStatus();
}


// Adds the TimeSeries of `key` to `request`, with `__name__` placed among the
// series labels in byte order. SeriesKey::labels() is already sorted.
// NOTE: a series with its own label named `__name__` would be sent with two
// of them, and the receiver would reject the batch.
prompb::TimeSeries* AddTimeSeries(const SeriesKey& key,
                                  prompb::WriteRequest* request) {
  prompb::TimeSeries* series = request->add_timeseries();
  const auto add_label = [series](std::string_view name,
                                  std::string_view value) {
    prompb::Label* label = series->add_labels();
    label->set_name(std::string(name));
    label->set_value(std::string(value));
  };

  bool name_added = false;
  for (const auto& [label_name, label_value] : key.labels()) {
    if (!name_added && kNameLabel < label_name) {
      add_label(kNameLabel, key.name());
      name_added = true;
    }
    add_label(label_name, label_value);
  }
  if (!name_added) add_label(kNameLabel, key.name());
  return series;
}

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

class RemoteWriteSink final : public Sink {
 public:
  explicit RemoteWriteSink(const RemoteWriteOptions& options)
      : options_(options),
        redacted_url_(RedactUrl(options.url)),
        user_agent_(absl::StrCat(options.user_agent, "/", CONVERGE_VERSION)) {}

  std::string_view name() const override { return "remote-write"; }

  absl::Status Open() override;
  absl::Status Push(std::span<const Sample> batch) override;
  absl::Status Close() override;

 private:
  // libcurl callbacks; `self` is the sink.
  static size_t OnBody(char* data, size_t size, size_t count, void* self);
  static size_t OnHeader(char* data, size_t size, size_t count, void* self);

  // Maps a failed transfer (no HTTP status) to a status.
  absl::Status TransferError(CURLcode code) const;

  // Maps the HTTP status of a completed exchange to a status.
  absl::Status HttpStatusToStatus(long http_status) const;

  // Constant after construction.
  const RemoteWriteOptions options_;
  const std::string redacted_url_;
  const std::string user_agent_;

  // State of the request in flight, reused between pushes.
  std::string request_body_;      // must outlive curl_easy_perform()
  std::string response_body_;     // at most kMaxErrorBodyBytes of it
  bool response_truncated_ = false;
  std::string retry_after_;       // Retry-After of the final response

  // Created by Open(). Reusing one easy handle keeps its connection open
  // between pushes (HTTP keep-alive). The handle is declared last so that it
  // is destroyed before everything it points to.
  std::unique_ptr<curl_slist, CurlListDeleter> headers_;
  char error_buffer_[CURL_ERROR_SIZE] = {};
  std::unique_ptr<CURL, CurlEasyDeleter> curl_;
};

absl::Status RemoteWriteSink::Open() {
  curl_.reset(curl_easy_init());
  if (curl_ == nullptr) {
    return absl::FailedPreconditionError(
        "failed to create a libcurl handle for the remote write sink; "
        "curl_global_init() must be called before Open()");
  }

  // Headers required by remote write 1.0. An empty "Expect:" stops libcurl
  // from waiting for "100 Continue" before sending a large body.
  curl_slist* headers = nullptr;
  for (const char* header :
       {"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
        "X-Prometheus-Remote-Write-Version: 0.1.0", "Expect:"}) {
    curl_slist* extended = curl_slist_append(headers, header);
    if (extended == nullptr) {
      curl_slist_free_all(headers);
      return absl::ResourceExhaustedError("failed to allocate HTTP headers");
    }
    headers = extended;
  }
  if (!options_.bearer_token.empty()) {
    // libcurl copies the header text; the local string is cleared right away
    // so the token lives only in the options and inside libcurl.
    std::string authorization = "Authorization: Bearer " + options_.bearer_token;
    curl_slist* extended = curl_slist_append(headers, authorization.c_str());
    std::fill(authorization.begin(), authorization.end(), '\0');
    if (extended == nullptr) {
      curl_slist_free_all(headers);
      return absl::ResourceExhaustedError("failed to allocate HTTP headers");
    }
    headers = extended;
  }
  headers_.reset(headers);

  // Configure the handle once; Push() only swaps the body.
  CURL* curl = curl_.get();
  CURLcode code = CURLE_OK;
  const auto set = [&code, curl](CURLoption option, auto value) {
    if (code == CURLE_OK) code = curl_easy_setopt(curl, option, value);
  };
  set(CURLOPT_URL, options_.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_POST, 1L);
  set(CURLOPT_HTTPHEADER, headers_.get());
  set(CURLOPT_USERAGENT, user_agent_.c_str());
  set(CURLOPT_TIMEOUT_MS,
      static_cast<long>(std::max<int64_t>(
          1, absl::ToInt64Milliseconds(options_.timeout))));
  // Without NOSIGNAL libcurl times out name lookups with SIGALRM, which is
  // unsafe in a multi-threaded process.
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_ERRORBUFFER, error_buffer_);
  set(CURLOPT_WRITEFUNCTION, &RemoteWriteSink::OnBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(this));
  set(CURLOPT_HEADERFUNCTION, &RemoteWriteSink::OnHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(this));
  if (!options_.basic_auth_username.empty()) {
    set(CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    set(CURLOPT_USERNAME, options_.basic_auth_username.c_str());
    set(CURLOPT_PASSWORD, options_.basic_auth_password.c_str());
  }
  if (!options_.ca_file.empty()) set(CURLOPT_CAINFO, options_.ca_file.c_str());
  if (options_.insecure_skip_verify) {
    set(CURLOPT_SSL_VERIFYPEER, 0L);
    set(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (code != CURLE_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("failed to configure libcurl for ", redacted_url_, ": ",
                     curl_easy_strerror(code)));
  }

  if (options_.insecure_skip_verify) {
    spdlog::warn(
        "remote write sink: TLS certificate verification is OFF for {} "
        "(--sink-insecure-skip-verify); anyone on the path can read and "
        "change what is pushed",
        redacted_url_);
  }
  spdlog::info(
      "remote write sink: pushing to {} (timeout {}, auth {}, CA {})",
      redacted_url_, absl::FormatDuration(options_.timeout),
      !options_.bearer_token.empty()          ? "bearer token"
      : !options_.basic_auth_username.empty() ? "basic"
                                              : "none",
      options_.ca_file.empty() ? "system" : options_.ca_file);
  return absl::OkStatus();
}

absl::Status RemoteWriteSink::Push(std::span<const Sample> batch) {
  if (curl_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "remote write sink for ", redacted_url_,
        " received a batch before Open() or after Close()"));
  }
  if (batch.empty()) return absl::OkStatus();

  // Encode, then hand the body to the handle configured by Open().
  request_body_ = SnappyCompress(EncodeWriteRequest(batch));
  CURLcode code = curl_easy_setopt(curl_.get(), CURLOPT_POSTFIELDS,
                                   request_body_.data());
  if (code == CURLE_OK) {
    code = curl_easy_setopt(curl_.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                            static_cast<curl_off_t>(request_body_.size()));
  }
  if (code != CURLE_OK) return TransferError(code);

  // Send it and classify the outcome.
  response_body_.clear();
  response_truncated_ = false;
  retry_after_.clear();
  error_buffer_[0] = '\0';
  code = curl_easy_perform(curl_.get());
  if (code != CURLE_OK) return TransferError(code);

  long http_status = 0;
  curl_easy_getinfo(curl_.get(), CURLINFO_RESPONSE_CODE, &http_status);
  return HttpStatusToStatus(http_status);
}

absl::Status RemoteWriteSink::Close() {
  curl_.reset();
  headers_.reset();
  return absl::OkStatus();
}

size_t RemoteWriteSink::OnBody(char* data, size_t size, size_t count,
                               void* self) {
  // Keep only the start of the body for error messages, but read all of it,
  // because aborting the read would close the kept-alive connection.
  auto* sink = static_cast<RemoteWriteSink*>(self);
  const size_t bytes = size * count;
  const size_t room = kMaxErrorBodyBytes - sink->response_body_.size();
  sink->response_body_.append(data, std::min(bytes, room));
  if (bytes > room) sink->response_truncated_ = true;
  return bytes;
}

size_t RemoteWriteSink::OnHeader(char* data, size_t size, size_t count,
                                 void* self) {
  auto* sink = static_cast<RemoteWriteSink*>(self);
  const size_t bytes = size * count;
  const std::string_view line(data, bytes);

  // A status line starts the headers of a new response (e.g. after
  // "100 Continue"), so only the final response's Retry-After is kept.
  constexpr std::string_view kRetryAfter = "retry-after:";
  if (line.starts_with("HTTP/")) {
    sink->retry_after_.clear();
  } else if (absl::StartsWithIgnoreCase(ToAbsl(line), ToAbsl(kRetryAfter))) {
    sink->retry_after_ = std::string(
        absl::StripAsciiWhitespace(ToAbsl(line.substr(kRetryAfter.size()))));
  }
  return bytes;
}

absl::Status RemoteWriteSink::TransferError(CURLcode code) const {
  // libcurl 7.88's error texts name the host and port but not the userinfo
  // (a test checks this for a refused connection).
  const std::string detail =
      error_buffer_[0] != '\0' ? error_buffer_ : curl_easy_strerror(code);
  const std::string message = absl::StrCat("remote write to ", redacted_url_,
                                           " failed: ", detail);

  // Refused connections, failed name lookups and timeouts may clear up, but a
  // URL that libcurl cannot use never will.
  if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) {
    return absl::InvalidArgumentError(message);
  }
  return absl::UnavailableError(message);
}

absl::Status WithHttpStatus(absl::Status status, long http_status) {
  status.SetPayload(ToAbsl(kHttpStatusPayload),
                    absl::Cord(absl::StrCat(http_status)));
  return status;
}

absl::Status RemoteWriteSink::HttpStatusToStatus(long http_status) const {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();

  std::string message = absl::StrCat("remote write to ", redacted_url_,
                                     " returned HTTP ", http_status);
  // Some proxies echo the request headers in their error pages; the
  // credentials must not travel on into our logs.
  std::string scrubbed = response_body_;
  const std::string basic_credentials =
      options_.basic_auth_username.empty()
          ? std::string()
          : absl::Base64Escape(absl::StrCat(options_.basic_auth_username, ":",
                                            options_.basic_auth_password));
  for (const std::string* secret : {&options_.bearer_token,
                                    &options_.basic_auth_password,
                                    &basic_credentials}) {
    if (!secret->empty()) {
      absl::StrReplaceAll({{*secret, "REDACTED"}}, &scrubbed);
    }
  }
  const absl::string_view body = absl::StripAsciiWhitespace(scrubbed);
  if (!body.empty()) {
    absl::StrAppend(&message, ": ", body,
                    response_truncated_ ? " ... (truncated)" : "");
  }

  // An overloaded or failing receiver may recover, so the caller retries,
  // after the delay the receiver requested if it sent one.
  if (http_status == 429 || (http_status >= 500 && http_status < 600)) {
    absl::Status status = absl::UnavailableError(message);
    const std::optional<absl::Duration> delay =
        ParseRetryAfter(retry_after_, absl::Now());
    if (delay.has_value()) {
      const int64_t seconds =
          absl::ToInt64Seconds(absl::Ceil(*delay, absl::Seconds(1)));
      status.SetPayload(ToAbsl(kRetryAfterPayload), absl::Cord(absl::StrCat(seconds)));
    }
    return WithHttpStatus(std::move(status), http_status);
  }

  // The receiver rejected this batch, and sending it again would fail the
  // same way.
  if (http_status >= 400 && http_status < 500) {
    return WithHttpStatus(absl::InvalidArgumentError(message), http_status);
  }
  return WithHttpStatus(
      absl::FailedPreconditionError(absl::StrCat(
          message, " (expected 2xx; redirects are not followed, so pass the "
                   "final URL of the receiver)")),
      http_status);
}

}  // namespace

std::string EncodeWriteRequest(std::span<const Sample> batch) {
  prompb::WriteRequest request;

  // Index of each series' TimeSeries in `request`, keyed by its canonical
  // bytes, so that all samples of a series in this batch share one entry.
  absl::flat_hash_map<absl::string_view, int> index_of_series;
  for (const Sample& sample : batch) {
    const auto [it, inserted] = index_of_series.try_emplace(
        sample.series.encoded(), request.timeseries_size());
    prompb::TimeSeries* series =
        inserted ? AddTimeSeries(sample.series, &request)
                 : request.mutable_timeseries(it->second);

    // NOTE: a double represents integers exactly only up to 2^53, so larger
    // values reach the receiver rounded.
    prompb::Sample* out = series->add_samples();
    out->set_value(static_cast<double>(sample.value));
    out->set_timestamp(sample.timestamp_ms);
  }
  return request.SerializeAsString();
}

std::string SnappyCompress(const std::string& raw) {
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  return compressed;
}

std::string RedactUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  const size_t authority_start =
      scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const size_t authority_end = std::min(
      url.find_first_of("/?#", authority_start), url.size());
  const std::string_view authority =
      url.substr(authority_start, authority_end - authority_start);

  // The last '@' ends the userinfo, because a password may contain '@'.
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return absl::StrCat(ToAbsl(url.substr(0, authority_start)), "REDACTED@",
                      ToAbsl(url.substr(authority_start + at + 1)));
}

absl::StatusOr<std::unique_ptr<Sink>> MakeRemoteWriteSink(
    const RemoteWriteOptions& options) {
  if (absl::Status url = ValidateUrl(options.url); !url.ok()) return url;
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid remote write timeout ", absl::FormatDuration(options.timeout),
        ": it must be positive, e.g. 30s"));
  }
  if (options.user_agent.empty()) {
    return absl::InvalidArgumentError(
        "missing remote write User-Agent product name, e.g. "
        "converge-exporter");
  }
  if (!options.bearer_token.empty() && !options.basic_auth_username.empty()) {
    return absl::InvalidArgumentError(
        "remote write: a bearer token and basic auth were both given; use "
        "one of them");
  }
  if (options.bearer_token.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        "remote write: the bearer token contains a line break; check the "
        "token file");
  }
  return std::make_unique<RemoteWriteSink>(options);
}

}  // namespace converge

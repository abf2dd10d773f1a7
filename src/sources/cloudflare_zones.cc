#include "sources/cloudflare_zones.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "converge/series.h"
#include "core/absl_compat.h"

namespace converge::cloudflare {
namespace {

namespace dom = simdjson::dom;

// Characters of an error body quoted in a message.
constexpr size_t kMaxQuotedChars = 200;

// Attempts of one REST call before its error is returned.
constexpr int kRestAttempts = 3;
constexpr absl::Duration kRestRetryCap = absl::Seconds(10);

std::string Shorten(std::string_view text) {
  std::string result(text.substr(0, kMaxQuotedChars));
  if (text.size() > kMaxQuotedChars) result.append("...");
  return result;
}

// Marks a simdjson lookup whose failure leaves the default value in place.
void Optional(simdjson::error_code) {}

absl::Status Malformed(absl::string_view detail) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid zones API response: ", detail));
}

std::string Trimmed(const std::string& rest_url) {
  std::string url = rest_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// Reads one zone object of the REST API.
absl::StatusOr<ZoneInfo> ReadZone(dom::object object) {
  ZoneInfo zone;
  std::string_view text;
  if (object["id"].get_string().get(text) != simdjson::SUCCESS) {
    return Malformed("a zone has no string \"id\"");
  }
  zone.id = std::string(text);
  if (object["name"].get_string().get(text) != simdjson::SUCCESS) {
    return Malformed(absl::StrCat("zone ", zone.id, " has no string \"name\""));
  }
  zone.name = std::string(text);
  if (object["status"].get_string().get(text) == simdjson::SUCCESS) {
    zone.status = std::string(text);
  }

  // The plan: legacy_id is "free", "pro", "business" or "enterprise". Older
  // responses without it are read by name and price.
  dom::object plan;
  if (object["plan"].get_object().get(plan) == simdjson::SUCCESS) {
    std::string_view legacy_id;
    std::string_view name;
    Optional(plan["legacy_id"].get_string().get(legacy_id));
    Optional(plan["name"].get_string().get(name));
    zone.plan = std::string(!legacy_id.empty() ? legacy_id : name);
    if (!legacy_id.empty()) {
      zone.free_plan = absl::EqualsIgnoreCase(ToAbsl(legacy_id), "free");
    } else {
      double price = -1;
      Optional(plan["price"].get_double().get(price));
      zone.free_plan =
          absl::StrContains(absl::AsciiStrToLower(ToAbsl(name)), "free") &&
          price == 0;
    }
  }
  return zone;
}

// Reads the envelope into `root` and returns its `result`, or the API's
// error.
absl::StatusOr<dom::element> ReadEnvelope(dom::parser& parser,
                                          const simdjson::padded_string& body,
                                          dom::element& root) {
  if (parser.parse(body).get(root) != simdjson::SUCCESS) {
    return Malformed(
        absl::StrCat("not valid JSON: ", Shorten(std::string_view(body))));
  }
  bool success = false;
  if (root["success"].get_bool().get(success) != simdjson::SUCCESS) {
    return Malformed("no boolean \"success\"");
  }
  if (!success) {
    std::string detail;
    dom::array errors;
    if (root["errors"].get_array().get(errors) == simdjson::SUCCESS) {
      for (dom::element error : errors) {
        int64_t code = 0;
        std::string_view message;
        Optional(error["code"].get_int64().get(code));
        Optional(error["message"].get_string().get(message));
        absl::StrAppend(&detail, detail.empty() ? "" : "; ", "code ", code,
                        ": ", ToAbsl(message));
      }
    }
    return absl::FailedPreconditionError(
        absl::StrCat("the zones API reported failure: ",
                     detail.empty() ? std::string("no error given") : detail));
  }
  dom::element result;
  if (root["result"].get(result) != simdjson::SUCCESS) {
    return Malformed("no \"result\"");
  }
  return result;
}

// Performs one GET with retries of transient failures.
absl::StatusOr<HttpResponse> GetWithRetries(CloudflareClient& client,
                                            const std::string& url,
                                            const std::string& request) {
  absl::Status last;
  for (int attempt = 1; attempt <= kRestAttempts; ++attempt) {
    absl::StatusOr<HttpResponse> response = client.Get(url);
    absl::Duration delay = absl::Seconds(1 << (attempt - 1));
    if (response.ok()) {
      const long status = response->status;
      if (status != 429 && status < 500) return response;
      if (response->retry_after.has_value()) delay = *response->retry_after;
      last = absl::UnavailableError(
          absl::StrCat(request, ": HTTP ", status, ": ",
                       client.Redact(Shorten(response->body))));
    } else {
      last = response.status();
    }
    if (attempt == kRestAttempts) break;
    delay = std::min(delay, kRestRetryCap);
    spdlog::warn(
        "cloudflare zones: {} failed (attempt {} of {}), retrying in "
        "{}: {}",
        request, attempt, kRestAttempts, absl::FormatDuration(delay),
        std::string(last.message()));
    absl::SleepFor(delay);
  }
  return last;
}

}  // namespace

absl::StatusOr<ZonesPage> ParseZonesPage(std::string_view body) {
  dom::parser parser;
  const simdjson::padded_string padded(body);
  dom::element root;
  absl::StatusOr<dom::element> result = ReadEnvelope(parser, padded, root);
  if (!result.ok()) return result.status();

  dom::array zones;
  if (result->get_array().get(zones) != simdjson::SUCCESS) {
    return Malformed("\"result\" of a zone listing must be an array");
  }
  ZonesPage page;
  for (dom::element element : zones) {
    dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      return Malformed("a zone must be an object");
    }
    absl::StatusOr<ZoneInfo> zone = ReadZone(object);
    if (!zone.ok()) return zone.status();
    page.zones.push_back(*std::move(zone));
  }

  // Pagination. Without result_info the page is the only one.
  int64_t number = 0;
  if (root["result_info"]["page"].get_int64().get(number) ==
      simdjson::SUCCESS) {
    page.page = static_cast<int>(number);
  }
  if (root["result_info"]["total_pages"].get_int64().get(number) ==
      simdjson::SUCCESS) {
    page.total_pages = static_cast<int>(number);
  } else {
    page.total_pages = page.page;
  }
  return page;
}

absl::StatusOr<ZoneInfo> ParseZone(std::string_view body) {
  dom::parser parser;
  const simdjson::padded_string padded(body);
  dom::element root;
  absl::StatusOr<dom::element> result = ReadEnvelope(parser, padded, root);
  if (!result.ok()) return result.status();
  dom::object object;
  if (result->get_object().get(object) != simdjson::SUCCESS) {
    return Malformed("\"result\" of a zone must be an object");
  }
  return ReadZone(object);
}

absl::StatusOr<std::vector<ZoneInfo>> ListZones(CloudflareClient& client,
                                                const std::string& rest_url) {
  std::vector<ZoneInfo> zones;
  const std::string base = Trimmed(rest_url);

  // Pages are numbered from 1. The bound stops a server that keeps
  // announcing more pages: 100 000 pages of 50 zones is beyond any account.
  constexpr int kMaxPages = 100000;
  int total_pages = 1;
  for (int page = 1; page <= total_pages && page <= kMaxPages; ++page) {
    const std::string request = absl::StrCat("listing zones, page ", page);
    absl::StatusOr<HttpResponse> response = GetWithRetries(
        client,
        absl::StrCat(base, "/zones?page=", page, "&per_page=", kZonesPerPage),
        request);
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::PermissionDeniedError(absl::StrCat(
          request, ": HTTP ", response->status, ": ",
          client.Redact(Shorten(response->body)),
          ". The token needs the Zone:Read permission to list zones; or "
          "pass --zones"));
    }
    absl::StatusOr<ZonesPage> parsed = ParseZonesPage(response->body);
    if (!parsed.ok()) {
      return absl::Status(
          parsed.status().code(),
          absl::StrCat(request, ": ", parsed.status().message()));
    }
    for (ZoneInfo& zone : parsed->zones) zones.push_back(std::move(zone));
    total_pages = parsed->total_pages;
  }
  return zones;
}

absl::StatusOr<std::vector<ZoneInfo>> GetZones(
    CloudflareClient& client, const std::string& rest_url,
    const std::vector<std::string>& ids) {
  std::vector<ZoneInfo> zones;
  const std::string base = Trimmed(rest_url);
  for (const std::string& id : ids) {
    const std::string request = absl::StrCat("reading zone ", id);
    absl::StatusOr<HttpResponse> response =
        GetWithRetries(client, absl::StrCat(base, "/zones/", id), request);
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::NotFoundError(absl::StrCat(
          request, ": HTTP ", response->status, ": ",
          client.Redact(Shorten(response->body)),
          ". Check the ID in --zones and that the token can read the zone"));
    }
    absl::StatusOr<ZoneInfo> zone = ParseZone(response->body);
    if (!zone.ok()) {
      return absl::Status(zone.status().code(),
                          absl::StrCat(request, ": ", zone.status().message()));
    }
    zones.push_back(*std::move(zone));
  }
  return zones;
}

uint32_t ZoneOwner(std::string_view zone_id, uint32_t members) {
  uint32_t owner = 0;
  uint64_t best = 0;
  for (uint32_t member = 0; member < members; ++member) {
    const uint64_t score =
        StableHash(absl::StrCat(ToAbsl(zone_id), "/", member));
    if (member == 0 || score > best) {
      best = score;
      owner = member;
    }
  }
  return owner;
}

ZoneSelection SelectZones(std::vector<ZoneInfo> zones,
                          const std::vector<std::string>& exclude,
                          uint32_t members, uint32_t member_index) {
  const absl::flat_hash_set<std::string> excluded(exclude.begin(),
                                                  exclude.end());
  ZoneSelection selection;
  absl::flat_hash_set<std::string> seen;
  for (ZoneInfo& zone : zones) {
    if (!seen.insert(zone.id).second) continue;  // listed twice
    if (excluded.contains(zone.id) || excluded.contains(zone.name)) {
      ++selection.excluded;
    } else if (!zone.status.empty() && zone.status != "active") {
      ++selection.inactive;
    } else if (ZoneOwner(zone.id, members) != member_index) {
      ++selection.not_owned;
    } else {
      selection.zones.push_back(std::move(zone));
    }
  }
  return selection;
}

}  // namespace converge::cloudflare

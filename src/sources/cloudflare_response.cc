// ParseGraphqlResponse reads the whole body with simdjson's DOM parser and
// copies what it needs into plain structs, so the rows outlive the parser and
// can be turned into observations in parallel.

#include "sources/cloudflare_response.h"

#include <simdjson.h>

#include <cmath>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "converge/time_util.h"
#include "core/absl_compat.h"

namespace converge::cloudflare {
namespace {

namespace dom = simdjson::dom;

// Characters of an offending JSON value quoted in an error.
constexpr size_t kMaxQuotedChars = 64;

std::string Quote(dom::element element) {
  std::string text = simdjson::to_string(element);
  if (text.size() > kMaxQuotedChars) {
    text.resize(kMaxQuotedChars);
    text.append("...");
  }
  return text;
}

absl::Status Invalid(absl::string_view where, absl::string_view detail) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid GraphQL response: ", where, " ", detail));
}

// Reads a count: a JSON integer >= 0, or a double holding one (some sums
// come back as floats). A missing or null field reads as 0, because fields
// the query did not select are absent.
absl::Status ReadCount(dom::object object, std::string_view field,
                       const std::string& where, uint64_t* out) {
  dom::element element;
  if (object[field].get(element) != simdjson::SUCCESS || element.is_null()) {
    *out = 0;
    return absl::OkStatus();
  }
  switch (element.type()) {
    case dom::element_type::UINT64:
      *out = element.get_uint64().value_unsafe();
      return absl::OkStatus();
    case dom::element_type::INT64: {
      const int64_t value = element.get_int64().value_unsafe();
      if (value >= 0) {
        *out = static_cast<uint64_t>(value);
        return absl::OkStatus();
      }
      break;
    }
    case dom::element_type::DOUBLE: {
      const double value = element.get_double().value_unsafe();
      if (value >= 0 && value < 0x1.0p64 && std::floor(value) == value) {
        *out = static_cast<uint64_t>(value);
        return absl::OkStatus();
      }
      break;
    }
    default:
      break;
  }
  return Invalid(
      absl::StrCat(where, ".", ToAbsl(field)),
      absl::StrCat("must be a non-negative integer, got ", Quote(element)));
}

// Reads a dimension as label text: a string as is, an integer in decimal
// (edgeResponseStatus is a number), null or missing as "".
absl::Status ReadLabel(dom::object object, std::string_view field,
                       const std::string& where, std::string* out) {
  dom::element element;
  out->clear();
  if (object[field].get(element) != simdjson::SUCCESS || element.is_null()) {
    return absl::OkStatus();
  }
  switch (element.type()) {
    case dom::element_type::STRING:
      *out = std::string(element.get_string().value_unsafe());
      return absl::OkStatus();
    case dom::element_type::UINT64:
      *out = absl::StrCat(element.get_uint64().value_unsafe());
      return absl::OkStatus();
    case dom::element_type::INT64:
      *out = absl::StrCat(element.get_int64().value_unsafe());
      return absl::OkStatus();
    default:
      return Invalid(
          absl::StrCat(where, ".", ToAbsl(field)),
          absl::StrCat("must be a string or an integer, got ", Quote(element)));
  }
}

// Reads `field` of `object` as a `T` (dom::object or dom::array, named
// `kind` in errors). A missing or null field reads as absent
// (*found = false).
template <typename T>
absl::Status ReadOptional(dom::object object, std::string_view field,
                          std::string_view kind, const std::string& where,
                          T* out, bool* found) {
  dom::element element;
  *found = false;
  if (object[field].get(element) != simdjson::SUCCESS || element.is_null()) {
    return absl::OkStatus();
  }
  if (element.get(*out) != simdjson::SUCCESS) {
    return Invalid(absl::StrCat(where, ".", ToAbsl(field)),
                   absl::StrCat("must be ", ToAbsl(kind), ", got ",
                                Quote(element)));
  }
  *found = true;
  return absl::OkStatus();
}

absl::Status ReadObject(dom::object object, std::string_view field,
                        const std::string& where, dom::object* out,
                        bool* found) {
  return ReadOptional(object, field, "an object", where, out, found);
}

absl::Status ReadArray(dom::object object, std::string_view field,
                       const std::string& where, dom::array* out, bool* found) {
  return ReadOptional(object, field, "an array", where, out, found);
}

// Reads the minute of a group from dimensions.<field>.
absl::Status ReadBucket(dom::object dimensions, std::string_view field,
                        const std::string& where, int64_t* bucket_ms) {
  std::string_view text;
  if (dimensions[field].get_string().get(text) != simdjson::SUCCESS) {
    return Invalid(absl::StrCat(where, ".dimensions.", ToAbsl(field)),
                   "is missing or not a string");
  }
  // The rows of one minute repeat its text, so the last result is reused.
  thread_local std::string last_text;
  thread_local int64_t last_ms = 0;
  if (!last_text.empty() && text == last_text) {
    *bucket_ms = last_ms;
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> parsed = ParseRfc3339Millis(text);
  if (!parsed.ok()) {
    return Invalid(absl::StrCat(where, ".dimensions.", ToAbsl(field)),
                   parsed.status().message());
  }
  last_text.assign(text);
  last_ms = *parsed;
  *bucket_ms = *parsed;
  return absl::OkStatus();
}

// Reads the required `dimensions` object of a group and the group's minute
// from dimensions.<bucket_field>.
absl::Status ReadDimensions(dom::object group, std::string_view bucket_field,
                            const std::string& where, dom::object* dimensions,
                            int64_t* bucket_ms) {
  bool found = false;
  if (absl::Status status =
          ReadObject(group, "dimensions", where, dimensions, &found);
      !status.ok()) {
    return status;
  }
  if (!found) return Invalid(where, "has no dimensions");
  return ReadBucket(*dimensions, bucket_field, where, bucket_ms);
}

// Runs `read` on every object of `array`, naming each `where[i]`.
template <typename ReadOne>
absl::Status ForEachObject(dom::array array, const std::string& where,
                           ReadOne read) {
  size_t index = 0;
  std::string item = where;  // reused, so naming a row allocates nothing
  for (dom::element element : array) {
    item.resize(where.size());
    absl::StrAppend(&item, "[", index, "]");
    dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      return Invalid(item,
                     absl::StrCat("must be an object, got ", Quote(element)));
    }
    if (absl::Status status = read(object, item); !status.ok()) return status;
    ++index;
  }
  return absl::OkStatus();
}

// Reads the list `sum.<field>` of {<key>, <value>} pairs.
absl::Status ReadCounts(dom::object sum, std::string_view field,
                        std::string_view key, std::string_view value,
                        const std::string& where,
                        std::vector<Http1mRow::Count>* out) {
  dom::array array;
  bool found = false;
  if (absl::Status status = ReadArray(sum, field, where, &array, &found);
      !status.ok() || !found) {
    return status;
  }
  return ForEachObject(
      array, absl::StrCat(where, ".", ToAbsl(field)),
      [&](dom::object item, const std::string& item_where) {
        Http1mRow::Count count;
        if (absl::Status status = ReadLabel(item, key, item_where, &count.key);
            !status.ok()) {
          return status;
        }
        if (absl::Status status =
                ReadCount(item, value, item_where, &count.value);
            !status.ok()) {
          return status;
        }
        out->push_back(std::move(count));
        return absl::OkStatus();
      });
}

absl::Status ReadHttp1mRow(dom::object group, const std::string& where,
                           Http1mRow* row) {
  // Minute.
  dom::object dimensions;
  if (absl::Status status = ReadDimensions(group, "datetime", where,
                                           &dimensions, &row->bucket_ms);
      !status.ok()) {
    return status;
  }

  // uniq.uniques.
  dom::object uniq;
  bool found = false;
  if (absl::Status status = ReadObject(group, "uniq", where, &uniq, &found);
      !status.ok()) {
    return status;
  }
  if (found) {
    if (absl::Status status =
            ReadCount(uniq, "uniques", where + ".uniq", &row->uniques);
        !status.ok()) {
      return status;
    }
  }

  // sum: totals, then the breakdowns.
  dom::object sum;
  if (absl::Status status = ReadObject(group, "sum", where, &sum, &found);
      !status.ok() || !found) {
    return status;
  }
  const std::string sum_where = where + ".sum";
  const std::pair<std::string_view, uint64_t*> totals[] = {
      {"requests", &row->requests},
      {"cachedRequests", &row->cached_requests},
      {"encryptedRequests", &row->encrypted_requests},
      {"bytes", &row->bytes},
      {"cachedBytes", &row->cached_bytes},
      {"encryptedBytes", &row->encrypted_bytes},
      {"pageViews", &row->page_views},
      {"threats", &row->threats},
  };
  for (const auto& [field, out] : totals) {
    if (absl::Status status = ReadCount(sum, field, sum_where, out);
        !status.ok()) {
      return status;
    }
  }

  dom::array array;
  if (absl::Status status =
          ReadArray(sum, "contentTypeMap", sum_where, &array, &found);
      !status.ok()) {
    return status;
  }
  if (found) {
    absl::Status status = ForEachObject(
        array, sum_where + ".contentTypeMap",
        [&](dom::object item, const std::string& item_where) {
          Http1mRow::ContentType entry;
          absl::Status read = ReadLabel(item, "edgeResponseContentTypeName",
                                        item_where, &entry.name);
          if (read.ok()) {
            read = ReadCount(item, "requests", item_where, &entry.requests);
          }
          if (read.ok())
            read = ReadCount(item, "bytes", item_where, &entry.bytes);
          if (read.ok()) row->content_types.push_back(std::move(entry));
          return read;
        });
    if (!status.ok()) return status;
  }

  if (absl::Status status =
          ReadArray(sum, "countryMap", sum_where, &array, &found);
      !status.ok()) {
    return status;
  }
  if (found) {
    absl::Status status = ForEachObject(
        array, sum_where + ".countryMap",
        [&](dom::object item, const std::string& item_where) {
          Http1mRow::Country entry;
          absl::Status read =
              ReadLabel(item, "clientCountryName", item_where, &entry.code);
          if (read.ok()) {
            read = ReadCount(item, "requests", item_where, &entry.requests);
          }
          if (read.ok())
            read = ReadCount(item, "bytes", item_where, &entry.bytes);
          if (read.ok()) {
            read = ReadCount(item, "threats", item_where, &entry.threats);
          }
          if (read.ok()) row->countries.push_back(std::move(entry));
          return read;
        });
    if (!status.ok()) return status;
  }

  if (absl::Status status =
          ReadCounts(sum, "responseStatusMap", "edgeResponseStatus", "requests",
                     sum_where, &row->statuses);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = ReadCounts(sum, "browserMap", "uaBrowserFamily",
                                       "pageViews", sum_where, &row->browsers);
      !status.ok()) {
    return status;
  }
  return ReadCounts(sum, "threatPathingMap", "threatPathingName", "requests",
                    sum_where, &row->threat_paths);
}

absl::Status ReadAdaptiveRow(dom::object group, const std::string& where,
                             AdaptiveRow* row) {
  dom::object dimensions;
  if (absl::Status status = ReadDimensions(group, "datetimeMinute", where,
                                           &dimensions, &row->bucket_ms);
      !status.ok()) {
    return status;
  }
  const std::string dimensions_where = where + ".dimensions";
  if (absl::Status status = ReadLabel(dimensions, "edgeResponseStatus",
                                      dimensions_where, &row->status);
      !status.ok()) {
    return status;
  }
  return ReadCount(group, "count", where, &row->count);
}

absl::Status ReadDnsRow(dom::object group, const std::string& where,
                        DnsRow* row) {
  dom::object dimensions;
  if (absl::Status status = ReadDimensions(group, "datetimeMinute", where,
                                           &dimensions, &row->bucket_ms);
      !status.ok()) {
    return status;
  }
  const std::string dimensions_where = where + ".dimensions";
  const std::pair<std::string_view, std::string*> labels[] = {
      {"responseCode", &row->response_code},
      {"queryType", &row->query_type},
      {"ipVersion", &row->ip_version},
  };
  for (const auto& [field, out] : labels) {
    if (absl::Status status =
            ReadLabel(dimensions, field, dimensions_where, out);
        !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = ReadCount(group, "count", where, &row->count);
      !status.ok()) {
    return status;
  }

  dom::object sum;
  bool found = false;
  if (absl::Status status = ReadObject(group, "sum", where, &sum, &found);
      !status.ok() || !found) {
    return status;
  }
  if (absl::Status status =
          ReadCount(sum, "countStale", where + ".sum", &row->stale);
      !status.ok()) {
    return status;
  }
  return ReadCount(sum, "countNotCachedAndNotStale", where + ".sum",
                   &row->uncached);
}

// Appends one row to `rows` for every group of `groups`, read by
// `read_row`.
template <typename Row>
absl::Status ReadRows(dom::array groups, const std::string& where,
                      absl::Status (*read_row)(dom::object, const std::string&,
                                               Row*),
                      std::vector<Row>* rows) {
  return ForEachObject(groups, where,
                       [&](dom::object group, const std::string& item) {
                         rows->emplace_back();
                         return read_row(group, item, &rows->back());
                       });
}

absl::Status ReadZone(dom::object zone, const std::string& where,
                      Dataset dataset, ZoneRows* rows) {
  std::string_view tag;
  if (zone["zoneTag"].get_string().get(tag) != simdjson::SUCCESS) {
    return Invalid(where + ".zoneTag", "is missing or not a string");
  }
  rows->zone_tag = std::string(tag);

  const std::string_view field = DatasetName(dataset);
  dom::array groups;
  bool found = false;
  if (absl::Status status = ReadArray(zone, field, where, &groups, &found);
      !status.ok() || !found) {
    return status;
  }
  const std::string groups_where = absl::StrCat(where, ".", ToAbsl(field));
  switch (dataset) {
    case Dataset::kHttp1m:
      return ReadRows(groups, groups_where, ReadHttp1mRow, &rows->http1m);
    case Dataset::kHttpAdaptive:
      return ReadRows(groups, groups_where, ReadAdaptiveRow, &rows->adaptive);
    case Dataset::kDns:
      return ReadRows(groups, groups_where, ReadDnsRow, &rows->dns);
  }
  return absl::OkStatus();
}

// Reads the zone position out of a path like ["viewer", "zones", 2, ...].
std::optional<size_t> ZoneIndexOf(dom::array path) {
  std::vector<dom::element> parts;
  for (dom::element part : path) {
    parts.push_back(part);
    if (parts.size() == 3) break;
  }
  if (parts.size() < 3) return std::nullopt;
  std::string_view first;
  std::string_view second;
  if (parts[0].get_string().get(first) != simdjson::SUCCESS ||
      parts[1].get_string().get(second) != simdjson::SUCCESS ||
      first != "viewer" || second != "zones") {
    return std::nullopt;
  }

  uint64_t index = 0;
  if (parts[2].get_uint64().get(index) == simdjson::SUCCESS) {
    return static_cast<size_t>(index);
  }
  std::string_view text;
  if (parts[2].get_string().get(text) == simdjson::SUCCESS &&
      absl::SimpleAtoi(ToAbsl(text), &index)) {
    return static_cast<size_t>(index);
  }
  return std::nullopt;
}

absl::Status ReadErrors(dom::array errors, std::vector<GraphqlError>* out) {
  return ForEachObject(
      errors, "errors", [&](dom::object object, const std::string& where) {
        GraphqlError error;
        std::string_view message;
        if (object["message"].get_string().get(message) == simdjson::SUCCESS) {
          error.message = std::string(message);
        } else {
          error.message = "(an error without a message)";
        }
        dom::array path;
        if (object["path"].get_array().get(path) == simdjson::SUCCESS) {
          error.zone_index = ZoneIndexOf(path);
        }
        std::string_view code;
        if (object["extensions"]["code"].get_string().get(code) ==
            simdjson::SUCCESS) {
          error.code = std::string(code);
        }
        out->push_back(std::move(error));
        return absl::OkStatus();
      });
}

}  // namespace

absl::StatusOr<GraphqlResponse> ParseGraphqlResponse(std::string_view body,
                                                     Dataset dataset) {
  // Document. simdjson needs padding after the text, hence the copy.
  dom::parser parser;
  const simdjson::padded_string padded(body);
  dom::element root;
  if (const auto error = parser.parse(padded).get(root);
      error != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid GraphQL response: not valid JSON (",
                     simdjson::error_message(error), ")",
                     LooksLikeHtml(body) ? "; the body is an HTML page" : ""));
  }
  dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return Invalid("the top level", "must be an object");
  }

  // The errors array decides, whatever the HTTP status and the data.
  GraphqlResponse response;
  dom::array errors;
  bool found = false;
  if (absl::Status status = ReadArray(object, "errors", "", &errors, &found);
      !status.ok()) {
    return status;
  }
  if (found) {
    if (absl::Status status = ReadErrors(errors, &response.errors);
        !status.ok()) {
      return status;
    }
    if (!response.errors.empty()) return response;
  }

  // data.viewer.zones[].
  dom::object data;
  if (absl::Status status = ReadObject(object, "data", "", &data, &found);
      !status.ok()) {
    return status;
  }
  if (!found) return Invalid("the response", "has neither data nor errors");
  dom::object viewer;
  if (absl::Status status = ReadObject(data, "viewer", "data", &viewer, &found);
      !status.ok()) {
    return status;
  }
  if (!found) return Invalid("data.viewer", "is missing");
  dom::array zones;
  if (absl::Status status =
          ReadArray(viewer, "zones", "data.viewer", &zones, &found);
      !status.ok()) {
    return status;
  }
  if (!found) return Invalid("data.viewer.zones", "is missing");

  absl::Status status = ForEachObject(
      zones, "data.viewer.zones",
      [&](dom::object zone, const std::string& where) {
        response.zones.emplace_back();
        return ReadZone(zone, where, dataset, &response.zones.back());
      });
  if (!status.ok()) return status;
  return response;
}

ErrorKind Classify(const GraphqlError& error) {
  const std::string message = absl::AsciiStrToLower(error.message);
  const std::string code = absl::AsciiStrToLower(error.code);

  // Rate limits first: a depleted budget voids the whole response, whichever
  // node the error names. Messages as the API documents them: "rate limiter
  // budget depleted, try again after 5 minutes", "quota exceeded, please
  // repeat your request in the next minute".
  for (const char* needle : {"budget depleted", "quota exceeded", "rate limit",
                             "too many requests"}) {
    if (absl::StrContains(message, needle)) return ErrorKind::kRateLimited;
  }
  if (absl::StrContains(code, "ratelimit") ||
      absl::StrContains(code, "budget") || absl::StrContains(code, "quota")) {
    return ErrorKind::kRateLimited;
  }

  // "limit reached, please try reduced time period".
  if (absl::StrContains(message, "reduced time period")) {
    return ErrorKind::kTooLarge;
  }
  // "cannot request data older than 2678400s": the plan's retention.
  if (absl::StrContains(message, "cannot request data older than")) {
    return ErrorKind::kTooOld;
  }
  if (error.zone_index.has_value()) return ErrorKind::kZone;
  return ErrorKind::kOther;
}

std::optional<absl::Duration> DelayInMessage(std::string_view message) {
  // "... after 5 minutes", "... in 30 seconds".
  const std::string lower = absl::AsciiStrToLower(ToAbsl(message));
  for (const char* lead : {"after ", "in "}) {
    for (size_t at = lower.find(lead); at != std::string::npos;
         at = lower.find(lead, at + 1)) {
      const char* begin = lower.c_str() + at + std::string_view(lead).size();
      char* end = nullptr;
      const long amount = std::strtol(begin, &end, 10);
      if (end == begin || amount <= 0) continue;
      const absl::string_view unit =
          absl::StripLeadingAsciiWhitespace(absl::string_view(end));
      if (absl::StartsWith(unit, "minute")) return absl::Minutes(amount);
      if (absl::StartsWith(unit, "second")) return absl::Seconds(amount);
      if (absl::StartsWith(unit, "hour")) return absl::Hours(amount);
    }
  }
  return std::nullopt;
}

bool LooksLikeHtml(std::string_view body) {
  const absl::string_view text =
      absl::StripLeadingAsciiWhitespace(ToAbsl(body));
  return absl::StartsWithIgnoreCase(text, "<!doctype html") ||
         absl::StartsWithIgnoreCase(text, "<html") ||
         absl::StartsWithIgnoreCase(text, "<head") ||
         absl::StartsWithIgnoreCase(text, "<body");
}

}  // namespace converge::cloudflare

#include "tests/fake_cloudflare/fake_cloudflare.h"

#include <httplib.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/absl_compat.h"

namespace converge::fake_cloudflare {
namespace {

namespace dom = simdjson::dom;

constexpr char kGraphqlPath[] = "/client/v4/graphql";
constexpr char kZonesPath[] = "/client/v4/zones";

// --- JSON output ------------------------------------------------------------

void AppendString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out->append(escaped);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string Quoted(std::string_view text) {
  std::string out;
  AppendString(text, &out);
  return out;
}

// Builds a JSON object from "key": value members, in order.
class Object {
 public:
  Object& Raw(std::string_view key, std::string_view json) {
    text_.append(text_.empty() ? "{" : ",");
    AppendString(key, &text_);
    text_.push_back(':');
    text_.append(json);
    return *this;
  }
  Object& Number(std::string_view key, uint64_t value) {
    return Raw(key, absl::StrCat(value));
  }
  Object& String(std::string_view key, std::string_view value) {
    return Raw(key, Quoted(value));
  }
  bool empty() const { return text_.empty(); }
  std::string Done() const { return text_.empty() ? "{}" : text_ + "}"; }

 private:
  std::string text_;
};

std::string Array(const std::vector<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

std::string TimeText(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// --- GraphQL selection sets -------------------------------------------------

// The fields a query selects, as a tree.
struct Selection {
  std::map<std::string, Selection> fields;

  const Selection* Get(const std::string& name) const {
    auto it = fields.find(name);
    return it == fields.end() ? nullptr : &it->second;
  }
  bool Has(const std::string& name) const { return Get(name) != nullptr; }

  void Paths(const std::string& prefix, std::set<std::string>* out) const {
    for (const auto& [name, child] : fields) {
      const std::string path = prefix.empty() ? name : prefix + "." + name;
      if (child.fields.empty()) {
        out->insert(path);
      } else {
        child.Paths(path, out);
      }
    }
  }
};

// Reads the selection sets of a query document, skipping arguments, aliases
// and the variable definitions. Enough of GraphQL for the queries the
// cloudflare source sends; anything else is rejected.
class QueryParser {
 public:
  explicit QueryParser(std::string_view text) : text_(text) {}

  std::optional<Selection> Parse() {
    // "query [name] [(variables)]" before the first selection set.
    Skip();
    if (Peek() != '{') {
      const std::string keyword = Identifier();
      if (keyword != "query") return std::nullopt;
      Skip();
      if (std::isalpha(static_cast<unsigned char>(Peek()))) Identifier();
      Skip();
      if (Peek() == '(' && !SkipBalanced('(', ')')) return std::nullopt;
      Skip();
    }
    Selection root;
    if (!ParseSet(&root)) return std::nullopt;
    return root;
  }

 private:
  char Peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }

  void Skip() {
    while (at_ < text_.size() &&
           (std::isspace(static_cast<unsigned char>(text_[at_])) ||
            text_[at_] == ',')) {
      ++at_;
    }
  }

  std::string Identifier() {
    const size_t begin = at_;
    while (at_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[at_])) ||
            text_[at_] == '_')) {
      ++at_;
    }
    return std::string(text_.substr(begin, at_ - begin));
  }

  bool SkipBalanced(char open, char close) {
    int depth = 0;
    for (; at_ < text_.size(); ++at_) {
      if (text_[at_] == open) ++depth;
      if (text_[at_] == close && --depth == 0) {
        ++at_;
        return true;
      }
    }
    return false;
  }

  bool ParseSet(Selection* selection) {
    Skip();
    if (Peek() != '{') return false;
    ++at_;
    while (true) {
      Skip();
      if (Peek() == '}') {
        ++at_;
        return true;
      }
      std::string name = Identifier();
      if (name.empty()) return false;
      Skip();
      if (Peek() == ':') {  // alias: the field name follows
        ++at_;
        Skip();
        name = Identifier();
        if (name.empty()) return false;
        Skip();
      }
      Selection& child = selection->fields[name];
      if (Peek() == '(' && !SkipBalanced('(', ')')) return false;
      Skip();
      if (Peek() == '{' && !ParseSet(&child)) return false;
    }
  }

  std::string_view text_;
  size_t at_ = 0;
};

// --- Dataset rows -----------------------------------------------------------

const std::vector<std::string_view>& DatasetNames() {
  static const auto* names = new std::vector<std::string_view>{
      "httpRequests1mGroups", "httpRequestsAdaptiveGroups",
      "dnsAnalyticsAdaptiveGroups"};
  return *names;
}

// Checks every requested field of a dataset selection against the fields the
// fake serves. Returns the first unknown one as a dotted path, or "".
std::string CheckFields(const std::string& dataset, const Selection& rows) {
  std::set<std::string> paths;
  rows.Paths("", &paths);
  static const auto* known = new std::map<std::string, std::set<std::string>>{
      {"httpRequests1mGroups",
       {"dimensions.datetime",
        "uniq.uniques",
        "sum.requests",
        "sum.cachedRequests",
        "sum.encryptedRequests",
        "sum.bytes",
        "sum.cachedBytes",
        "sum.encryptedBytes",
        "sum.pageViews",
        "sum.threats",
        "sum.contentTypeMap.edgeResponseContentTypeName",
        "sum.contentTypeMap.requests",
        "sum.contentTypeMap.bytes",
        "sum.countryMap.clientCountryName",
        "sum.countryMap.requests",
        "sum.countryMap.bytes",
        "sum.countryMap.threats",
        "sum.responseStatusMap.edgeResponseStatus",
        "sum.responseStatusMap.requests",
        "sum.browserMap.uaBrowserFamily",
        "sum.browserMap.pageViews",
        "sum.threatPathingMap.threatPathingName",
        "sum.threatPathingMap.requests"}},
      {"httpRequestsAdaptiveGroups",
       {"count", "dimensions.datetimeMinute", "dimensions.edgeResponseStatus"}},
      {"dnsAnalyticsAdaptiveGroups",
       {"count", "dimensions.datetimeMinute", "dimensions.responseCode",
        "dimensions.queryType", "dimensions.ipVersion", "sum.countStale",
        "sum.countNotCachedAndNotStale"}},
  };
  const std::set<std::string>& allowed = known->at(dataset);
  for (const std::string& path : paths) {
    if (!allowed.contains(path)) return path;
  }
  return "";
}

// Appends the httpRequests1mGroups row of one minute.
std::string Http1mRow(const Selection& rows, const MinuteData& data,
                      absl::Time minute) {
  Object row;
  if (const Selection* dimensions = rows.Get("dimensions")) {
    Object dims;
    if (dimensions->Has("datetime")) dims.String("datetime", TimeText(minute));
    row.Raw("dimensions", dims.Done());
  }
  if (const Selection* uniq = rows.Get("uniq")) {
    Object object;
    if (uniq->Has("uniques")) object.Number("uniques", data.uniques);
    row.Raw("uniq", object.Done());
  }
  const Selection* sum = rows.Get("sum");
  if (sum == nullptr) return row.Done();

  Object totals;
  const std::pair<const char*, uint64_t> scalars[] = {
      {"requests", data.requests},
      {"cachedRequests", data.cached_requests},
      {"encryptedRequests", data.encrypted_requests},
      {"bytes", data.bytes},
      {"cachedBytes", data.cached_bytes},
      {"encryptedBytes", data.encrypted_bytes},
      {"pageViews", data.page_views},
      {"threats", data.threats},
  };
  for (const auto& [name, value] : scalars) {
    if (sum->Has(name)) totals.Number(name, value);
  }

  // Each map lists the entries with the fields selected.
  const auto map =
      [&](const char* name, size_t count,
          const std::function<void(size_t, const Selection&, Object&)>& fill) {
        const Selection* selected = sum->Get(name);
        if (selected == nullptr) return;
        std::vector<std::string> items;
        for (size_t i = 0; i < count; ++i) {
          Object item;
          fill(i, *selected, item);
          items.push_back(item.Done());
        }
        totals.Raw(name, Array(items));
      };
  map("contentTypeMap", data.content_types.size(),
      [&](size_t i, const Selection& fields, Object& item) {
        const auto& entry = data.content_types[i];
        if (fields.Has("edgeResponseContentTypeName")) {
          item.String("edgeResponseContentTypeName", entry.name);
        }
        if (fields.Has("requests")) item.Number("requests", entry.requests);
        if (fields.Has("bytes")) item.Number("bytes", entry.bytes);
      });
  map("countryMap", data.countries.size(),
      [&](size_t i, const Selection& fields, Object& item) {
        const auto& entry = data.countries[i];
        if (fields.Has("clientCountryName")) {
          item.String("clientCountryName", entry.code);
        }
        if (fields.Has("requests")) item.Number("requests", entry.requests);
        if (fields.Has("bytes")) item.Number("bytes", entry.bytes);
        if (fields.Has("threats")) item.Number("threats", entry.threats);
      });
  map("responseStatusMap", data.statuses.size(),
      [&](size_t i, const Selection& fields, Object& item) {
        const auto& [status, requests] = data.statuses[i];
        if (fields.Has("edgeResponseStatus")) {
          item.Number("edgeResponseStatus", static_cast<uint64_t>(status));
        }
        if (fields.Has("requests")) item.Number("requests", requests);
      });
  map("browserMap", data.browsers.size(),
      [&](size_t i, const Selection& fields, Object& item) {
        const auto& [family, views] = data.browsers[i];
        if (fields.Has("uaBrowserFamily"))
          item.String("uaBrowserFamily", family);
        if (fields.Has("pageViews")) item.Number("pageViews", views);
      });
  map("threatPathingMap", data.threat_paths.size(),
      [&](size_t i, const Selection& fields, Object& item) {
        const auto& [type, requests] = data.threat_paths[i];
        if (fields.Has("threatPathingName"))
          item.String("threatPathingName", type);
        if (fields.Has("requests")) item.Number("requests", requests);
      });
  row.Raw("sum", totals.Done());
  return row.Done();
}

// Appends the httpRequestsAdaptiveGroups rows of one minute: one per edge
// status when the query groups by it, else one for the minute.
void AdaptiveRows(const Selection& rows, const MinuteData& data,
                  absl::Time minute, std::vector<std::string>* out) {
  const Selection* dimensions = rows.Get("dimensions");
  const bool by_status =
      dimensions != nullptr && dimensions->Has("edgeResponseStatus");
  const auto add = [&](std::optional<int> status, uint64_t count) {
    Object row;
    if (rows.Has("count")) row.Number("count", count);
    if (dimensions != nullptr) {
      Object dims;
      if (dimensions->Has("datetimeMinute")) {
        dims.String("datetimeMinute", TimeText(minute));
      }
      if (status.has_value()) {
        dims.Number("edgeResponseStatus", static_cast<uint64_t>(*status));
      }
      row.Raw("dimensions", dims.Done());
    }
    out->push_back(row.Done());
  };
  if (by_status) {
    for (const auto& [status, requests] : data.statuses) add(status, requests);
  } else if (!data.statuses.empty()) {
    uint64_t total = 0;
    for (const auto& [status, requests] : data.statuses) total += requests;
    add(std::nullopt, total);
  }
}

// Appends the dnsAnalyticsAdaptiveGroups rows of one minute, grouped by the
// dimensions the query selects.
void DnsRows(const Selection& rows, const MinuteData& data, absl::Time minute,
             std::vector<std::string>* out) {
  const Selection* dimensions = rows.Get("dimensions");
  const Selection* sum = rows.Get("sum");
  const auto selected = [&](const char* name) {
    return dimensions != nullptr && dimensions->Has(name);
  };

  struct Group {
    const MinuteData::DnsGroup* first = nullptr;
    uint64_t count = 0;
    uint64_t stale = 0;
    uint64_t uncached = 0;
  };
  std::map<std::string, Group> groups;
  std::vector<std::string> order;
  for (const MinuteData::DnsGroup& entry : data.dns) {
    std::string key;
    if (selected("responseCode"))
      absl::StrAppend(&key, entry.response_code, "|");
    if (selected("queryType")) absl::StrAppend(&key, entry.query_type, "|");
    if (selected("ipVersion")) absl::StrAppend(&key, entry.ip_version, "|");
    auto [it, added] = groups.try_emplace(key);
    if (added) {
      it->second.first = &entry;
      order.push_back(key);
    }
    it->second.count += entry.count;
    it->second.stale += entry.stale;
    it->second.uncached += entry.uncached;
  }

  for (const std::string& key : order) {
    const Group& group = groups[key];
    Object row;
    if (rows.Has("count")) row.Number("count", group.count);
    if (dimensions != nullptr) {
      Object dims;
      if (selected("datetimeMinute")) {
        dims.String("datetimeMinute", TimeText(minute));
      }
      if (selected("responseCode")) {
        dims.String("responseCode", group.first->response_code);
      }
      if (selected("queryType"))
        dims.String("queryType", group.first->query_type);
      if (selected("ipVersion")) {
        uint64_t version = 0;
        (void)absl::SimpleAtoi(group.first->ip_version, &version);
        dims.Number("ipVersion", version);
      }
      row.Raw("dimensions", dims.Done());
    }
    if (sum != nullptr) {
      Object sums;
      if (sum->Has("countStale")) sums.Number("countStale", group.stale);
      if (sum->Has("countNotCachedAndNotStale")) {
        sums.Number("countNotCachedAndNotStale", group.uncached);
      }
      row.Raw("sum", sums.Done());
    }
    out->push_back(row.Done());
  }
}

// --- Error responses --------------------------------------------------------

std::string ErrorObject(std::string_view message,
                        std::optional<std::vector<std::string>> path,
                        std::string_view code = "") {
  Object error;
  error.String("message", message);
  if (path.has_value()) {
    std::vector<std::string> parts;
    for (const std::string& part : *path) parts.push_back(Quoted(part));
    error.Raw("path", Array(parts));
  } else {
    error.Raw("path", "null");
  }
  Object extensions;
  if (!code.empty()) extensions.String("code", code);
  extensions.String("timestamp", TimeText(absl::Now()));
  error.Raw("extensions", extensions.Done());
  return error.Done();
}

std::string ErrorsBody(const std::vector<std::string>& errors) {
  return Object().Raw("data", "null").Raw("errors", Array(errors)).Done();
}

std::string ZoneJson(const FakeZone& zone) {
  const bool free_plan = zone.free_plan();
  std::string plan_name = zone.plan;
  if (!plan_name.empty())
    plan_name[0] = static_cast<char>(std::toupper(plan_name[0]));
  const uint64_t price = zone.plan == "free"       ? 0
                         : zone.plan == "pro"      ? 20
                         : zone.plan == "business" ? 200
                                                   : 5000;
  Object plan;
  plan.String("id", absl::StrCat(zone.plan, "-plan"))
      .String("name", absl::StrCat(plan_name, " Website"))
      .Number("price", free_plan ? 0 : price)
      .String("currency", "USD")
      .String("frequency", free_plan ? "" : "monthly")
      .Raw("is_subscribed", free_plan ? "false" : "true")
      .Raw("can_subscribe", "false")
      .String("legacy_id", zone.plan)
      .Raw("legacy_discount", "false")
      .Raw("externally_managed", "false");
  return Object()
      .String("id", zone.id)
      .String("name", zone.name)
      .String("status", zone.status)
      .Raw("paused", "false")
      .String("type", "full")
      .Raw("plan", plan.Done())
      .Done();
}

}  // namespace

Fault FaultOf(FaultKind kind, std::string target, int times) {
  Fault fault;
  fault.kind = kind;
  fault.target = std::move(target);
  fault.times = times;
  return fault;
}

Fault Http429Fault(int retry_after_seconds, int times) {
  Fault fault = FaultOf(FaultKind::kHttp429, "", times);
  fault.retry_after_seconds = retry_after_seconds;
  return fault;
}

Fault ZoneDeniedFault(std::string dataset, std::string zone_id, int times) {
  Fault fault = FaultOf(FaultKind::kZoneDenied, std::move(dataset), times);
  fault.zone_id = std::move(zone_id);
  return fault;
}

Fault SlowFault(absl::Duration delay) {
  Fault fault = FaultOf(FaultKind::kSlow);
  fault.delay = delay;
  return fault;
}

// --- Server -----------------------------------------------------------------

FakeCloudflare::FakeCloudflare(FakeOptions options)
    : options_(std::move(options)),
      model_(options_.seed),
      wall_start_(absl::Now()),
      latest_end_(options_.start) {}

absl::StatusOr<std::unique_ptr<FakeCloudflare>> FakeCloudflare::Start(
    FakeOptions options, int port) {
  auto fake =
      std::unique_ptr<FakeCloudflare>(new FakeCloudflare(std::move(options)));
  FakeCloudflare* self = fake.get();
  fake->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *fake->server_;
  server.set_keep_alive_max_count(1000);
  // Without TCP_NODELAY a kept-alive connection stalls each response on the
  // client's delayed ACK (about 40 ms on Linux), because httplib writes the
  // headers and the body separately.
  server.set_tcp_nodelay(true);
  server.Post(kGraphqlPath, [self](const httplib::Request& request,
                                   httplib::Response& response) {
    self->ServeGraphql(request, response);
  });
  server.Get(kZonesPath, [self](const httplib::Request& request,
                                httplib::Response& response) {
    self->ServeZoneList(request, response);
  });
  server.Get(
      R"(/client/v4/zones/([^/]+))",
      [self](const httplib::Request& request, httplib::Response& response) {
        self->ServeZone(request, response);
      });

  if (port == 0) {
    fake->port_ = server.bind_to_any_port("127.0.0.1");
    if (fake->port_ <= 0) {
      return absl::UnavailableError(
          "fake Cloudflare API: no free port on 127.0.0.1");
    }
  } else {
    if (!server.bind_to_port("127.0.0.1", port)) {
      return absl::UnavailableError(
          absl::StrCat("fake Cloudflare API: cannot listen on 127.0.0.1:", port,
                       " (in use?)"));
    }
    fake->port_ = port;
  }
  fake->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  // stop() only ends a server that is already running.
  while (!server.is_running()) std::this_thread::yield();
  return fake;
}

FakeCloudflare::~FakeCloudflare() { Stop(); }

void FakeCloudflare::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  stopping_cv_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeCloudflare::graphql_url() const {
  return absl::StrCat("http://127.0.0.1:", port_, kGraphqlPath);
}

std::string FakeCloudflare::rest_url() const {
  return absl::StrCat("http://127.0.0.1:", port_, "/client/v4");
}

void FakeCloudflare::AddFault(Fault fault) {
  std::lock_guard<std::mutex> lock(mutex_);
  faults_.push_back(std::move(fault));
}

std::vector<LoggedRequest> FakeCloudflare::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return log_;
}

size_t FakeCloudflare::graphql_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<size_t>(std::count_if(
      log_.begin(), log_.end(),
      [](const LoggedRequest& entry) { return entry.path == kGraphqlPath; }));
}

absl::Time FakeCloudflare::Now() const {
  if (options_.clock == ClockMode::kWall) {
    return options_.start + (absl::Now() - wall_start_) * options_.speed;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return latest_end_;
}

bool FakeCloudflare::Authorized(const httplib::Request& request) const {
  if (options_.token.empty() && options_.api_key.empty()) return true;
  if (!options_.token.empty() &&
      request.get_header_value("Authorization") == "Bearer " + options_.token) {
    return true;
  }
  return !options_.api_key.empty() &&
         request.get_header_value("X-Auth-Email") == options_.email &&
         request.get_header_value("X-Auth-Key") == options_.api_key;
}

bool FakeCloudflare::TakeFault(const std::string& target,
                               const std::vector<std::string>& zone_tags,
                               Fault* fault) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->target.empty() && it->target != target) continue;
    if (it->target.empty() && target == "zones") continue;
    if ((it->kind == FaultKind::kZoneDenied ||
         it->kind == FaultKind::kDataTooOld) &&
        std::find(zone_tags.begin(), zone_tags.end(), it->zone_id) ==
            zone_tags.end()) {
      continue;
    }
    *fault = *it;
    if (it->times > 0 && --it->times == 0) faults_.erase(it);
    return true;
  }
  return false;
}

void FakeCloudflare::Log(LoggedRequest entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  log_.push_back(std::move(entry));
}

void FakeCloudflare::ServeGraphql(const httplib::Request& request,
                                  httplib::Response& response) {
  LoggedRequest entry;
  entry.path = kGraphqlPath;
  entry.authorization = request.get_header_value("Authorization");
  const auto answer = [&](int status, std::string body,
                          const char* type = "application/json") {
    response.status = status;
    response.set_content(std::move(body), type);
    entry.status = status;
    Log(entry);
  };

  if (!Authorized(request)) {
    answer(403, ErrorsBody({ErrorObject(
                    "authentication error: the API token is invalid",
                    std::nullopt, "authn")}));
    return;
  }

  // The request: {"query": ..., "variables": {zoneTags, start, end, limit}}.
  dom::parser parser;
  dom::element root;
  std::string_view query_text;
  dom::object variables;
  if (parser.parse(request.body).get(root) != simdjson::SUCCESS ||
      root["query"].get_string().get(query_text) != simdjson::SUCCESS ||
      root["variables"].get_object().get(variables) != simdjson::SUCCESS) {
    answer(400,
           ErrorsBody({ErrorObject(
               "error parsing request: expected {\"query\", \"variables\"}",
               std::nullopt)}));
    return;
  }
  dom::array tags;
  std::string_view start_text;
  std::string_view end_text;
  int64_t limit = 0;
  if (variables["zoneTags"].get_array().get(tags) != simdjson::SUCCESS ||
      variables["start"].get_string().get(start_text) != simdjson::SUCCESS ||
      variables["end"].get_string().get(end_text) != simdjson::SUCCESS ||
      variables["limit"].get_int64().get(limit) != simdjson::SUCCESS ||
      limit < 1 || limit > 10000) {
    answer(400, ErrorsBody({ErrorObject(
                    "error parsing args: variables zoneTags, start, end and "
                    "limit (1 to 10000) are required",
                    std::nullopt)}));
    return;
  }
  for (dom::element tag : tags) {
    std::string_view text;
    if (tag.get_string().get(text) == simdjson::SUCCESS) {
      entry.zone_tags.emplace_back(text);
    }
  }
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, ToAbsl(start_text), &entry.start,
                       &error) ||
      !absl::ParseTime(absl::RFC3339_full, ToAbsl(end_text), &entry.end,
                       &error)) {
    answer(400, ErrorsBody({ErrorObject(
                    absl::StrCat("error parsing args: invalid Time: ", error),
                    std::nullopt)}));
    return;
  }
  entry.limit = limit;

  // The query: viewer.zones(filter: {zoneTag_in: ...}).<dataset> with the
  // filters the source uses.
  const std::string query(query_text);
  std::optional<Selection> selection = QueryParser(query).Parse();
  const Selection* zones_selection =
      selection.has_value() && selection->Get("viewer") != nullptr
          ? selection->Get("viewer")->Get("zones")
          : nullptr;
  const Selection* rows_selection = nullptr;
  if (zones_selection != nullptr) {
    for (std::string_view name : DatasetNames()) {
      if (const Selection* found = zones_selection->Get(std::string(name))) {
        entry.dataset = std::string(name);
        rows_selection = found;
      }
    }
  }
  for (const char* needle : {"zoneTag_in: $zoneTags", "datetime_geq: $start",
                             "datetime_lt: $end", "limit: $limit"}) {
    if (query.find(needle) == std::string::npos) rows_selection = nullptr;
  }
  if (rows_selection == nullptr) {
    answer(400, ErrorsBody({ErrorObject(
                    "error parsing query: expected viewer { zones(filter: { "
                    "zoneTag_in: $zoneTags }) { <dataset>(limit: $limit, "
                    "filter: { datetime_geq: $start, datetime_lt: $end }) } }",
                    std::nullopt)}));
    return;
  }
  rows_selection->Paths("", &entry.fields);
  if (const std::string unknown = CheckFields(entry.dataset, *rows_selection);
      !unknown.empty()) {
    answer(200,
           ErrorsBody({ErrorObject(absl::StrCat("unknown field \"", unknown,
                                                "\" of ", entry.dataset),
                                   std::nullopt, "graphql_validation")}));
    return;
  }

  // The fake's clock follows the latest range asked for.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    latest_end_ = std::max(latest_end_, entry.end);
  }
  const absl::Time now = Now();

  // Scripted faults.
  Fault fault;
  if (TakeFault(entry.dataset, entry.zone_tags, &fault)) {
    entry.faulted = true;
    switch (fault.kind) {
      case FaultKind::kHttp429:
        if (fault.retry_after_seconds >= 0) {
          response.set_header("Retry-After",
                              absl::StrCat(fault.retry_after_seconds));
        }
        answer(429,
               ErrorsBody({ErrorObject("Too many requests", std::nullopt)}));
        return;
      case FaultKind::kBudgetExceeded:
        answer(200, ErrorsBody({ErrorObject(
                        "rate limiter budget depleted, try again after 5 "
                        "minutes",
                        std::nullopt)}));
        return;
      case FaultKind::kHttp503:
        answer(503, "upstream connect error or disconnect/reset before headers",
               "text/plain");
        return;
      case FaultKind::kHtml502:
        answer(502,
               "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>"
               "</head><body><h1>502 Bad Gateway</h1><p>cloudflare</p></body>"
               "</html>\n",
               "text/html");
        return;
      case FaultKind::kZoneDenied:
      case FaultKind::kDataTooOld: {
        const size_t index = static_cast<size_t>(
            std::find(entry.zone_tags.begin(), entry.zone_tags.end(),
                      fault.zone_id) -
            entry.zone_tags.begin());
        const bool denied = fault.kind == FaultKind::kZoneDenied;
        answer(200,
               ErrorsBody({ErrorObject(
                   denied ? absl::StrCat("zone '", fault.zone_id,
                                         "' does not have access to the path")
                          : "cannot request data older than 2678400s",
                   std::vector<std::string>{"viewer", "zones",
                                            absl::StrCat(index), entry.dataset},
                   denied ? "authz" : "")}));
        return;
      }
      case FaultKind::kSlow: {
        std::unique_lock<std::mutex> lock(mutex_);
        stopping_cv_.wait_for(lock, absl::ToChronoNanoseconds(fault.delay),
                              [this] { return stopping_; });
        break;  // then respond normally
      }
      case FaultKind::kTruncatedJson:
        answer(200, "{\"data\":{\"viewer\":{\"zones\":[{\"zoneTag\":\"");
        return;
      case FaultKind::kNotJson:
        answer(200, "upstream answered something else", "text/plain");
        return;
      case FaultKind::kGraphqlError:
        answer(200, ErrorsBody({ErrorObject(
                        "error parsing args: scalar fields must have not "
                        "selections",
                        std::nullopt)}));
        return;
      case FaultKind::kEchoCredentials:
        answer(200,
               ErrorsBody({ErrorObject(
                   absl::StrCat(
                       "authentication failed for Authorization: ",
                       request.get_header_value("Authorization"),
                       " X-Auth-Key: ", request.get_header_value("X-Auth-Key")),
                   std::nullopt)}));
        return;
    }
  }

  // Plan errors: the Free plan has no httpRequests1mGroups.
  std::vector<std::string> errors;
  std::vector<size_t> zone_indexes;
  for (size_t position = 0; position < entry.zone_tags.size(); ++position) {
    const std::string& tag = entry.zone_tags[position];
    auto it =
        std::find_if(options_.zones.begin(), options_.zones.end(),
                     [&](const FakeZone& zone) { return zone.id == tag; });
    if (it == options_.zones.end()) continue;  // unknown zones are left out
    if (it->free_plan() && entry.dataset == "httpRequests1mGroups") {
      errors.push_back(ErrorObject(
          absl::StrCat("zone '", tag, "' does not have access to the path"),
          std::vector<std::string>{"viewer", "zones", absl::StrCat(position),
                                   entry.dataset},
          "authz"));
    }
    zone_indexes.push_back(static_cast<size_t>(it - options_.zones.begin()));
  }
  if (!errors.empty()) {
    answer(200, ErrorsBody(errors));
    return;
  }

  // Rows of every zone: the minutes in [start, end) that have ended by now,
  // oldest first, at most `limit` per zone.
  std::vector<std::string> zones_json;
  for (size_t zone_index : zone_indexes) {
    const FakeZone& zone = options_.zones[zone_index];
    std::vector<std::string> rows;
    const absl::Time first =
        absl::UnixEpoch() +
        absl::Ceil(entry.start - absl::UnixEpoch(), absl::Minutes(1));
    for (absl::Time minute = first; minute < entry.end;
         minute += absl::Minutes(1)) {
      std::optional<MinuteData> data =
          model_.At(zone_index, minute, now - minute);
      if (!data.has_value()) continue;
      if (entry.dataset == "httpRequests1mGroups") {
        rows.push_back(Http1mRow(*rows_selection, *data, minute));
      } else if (entry.dataset == "httpRequestsAdaptiveGroups") {
        AdaptiveRows(*rows_selection, *data, minute, &rows);
      } else {
        DnsRows(*rows_selection, *data, minute, &rows);
      }
    }
    if (rows.size() > static_cast<size_t>(limit)) rows.resize(limit);
    zones_json.push_back(Object()
                             .String("zoneTag", zone.id)
                             .Raw(entry.dataset, Array(rows))
                             .Done());
  }
  const std::string body =
      Object()
          .Raw("data", Object()
                           .Raw("viewer",
                                Object().Raw("zones", Array(zones_json)).Done())
                           .Done())
          .Raw("errors", "null")
          .Done();
  answer(200, body);
}

void FakeCloudflare::ServeZoneList(const httplib::Request& request,
                                   httplib::Response& response) {
  LoggedRequest entry;
  entry.path = kZonesPath;
  entry.authorization = request.get_header_value("Authorization");
  const auto answer = [&](int status, std::string body) {
    response.status = status;
    response.set_content(std::move(body), "application/json");
    entry.status = status;
    Log(entry);
  };
  const auto failure = [](int code, std::string_view message) {
    return Object()
        .Raw("success", "false")
        .Raw("errors", Array({Object()
                                  .Number("code", code)
                                  .String("message", message)
                                  .Done()}))
        .Raw("messages", "[]")
        .Raw("result", "null")
        .Done();
  };

  if (!Authorized(request)) {
    answer(403, failure(10000, "Authentication error"));
    return;
  }
  Fault fault;
  if (TakeFault("zones", {}, &fault)) {
    entry.faulted = true;
    if (fault.kind == FaultKind::kHttp429) {
      if (fault.retry_after_seconds >= 0) {
        response.set_header("Retry-After",
                            absl::StrCat(fault.retry_after_seconds));
      }
      answer(429,
             failure(971,
                     "Please wait and consider throttling your request speed"));
    } else {
      answer(503, failure(10001, "service temporarily unavailable"));
    }
    return;
  }

  // Pages of per_page zones, numbered from 1.
  int page = 1;
  int per_page = 20;
  if (request.has_param("page")) {
    (void)absl::SimpleAtoi(request.get_param_value("page"), &page);
  }
  if (request.has_param("per_page")) {
    (void)absl::SimpleAtoi(request.get_param_value("per_page"), &per_page);
  }
  page = std::max(page, 1);
  per_page = std::clamp(per_page, 5, options_.max_per_page);
  const int total = static_cast<int>(options_.zones.size());
  const int total_pages = std::max(1, (total + per_page - 1) / per_page);
  std::vector<std::string> result;
  for (int i = (page - 1) * per_page; i < std::min(total, page * per_page);
       ++i) {
    result.push_back(ZoneJson(options_.zones[i]));
  }
  answer(200, Object()
                  .Raw("result", Array(result))
                  .Raw("result_info", Object()
                                          .Number("page", page)
                                          .Number("per_page", per_page)
                                          .Number("count", result.size())
                                          .Number("total_count", total)
                                          .Number("total_pages", total_pages)
                                          .Done())
                  .Raw("success", "true")
                  .Raw("errors", "[]")
                  .Raw("messages", "[]")
                  .Done());
}

void FakeCloudflare::ServeZone(const httplib::Request& request,
                               httplib::Response& response) {
  LoggedRequest entry;
  entry.path = request.path;
  entry.authorization = request.get_header_value("Authorization");
  const std::string id = request.matches[1];
  auto it = std::find_if(options_.zones.begin(), options_.zones.end(),
                         [&](const FakeZone& zone) { return zone.id == id; });
  if (!Authorized(request) || it == options_.zones.end()) {
    response.status = 404;
    response.set_content(
        Object()
            .Raw("success", "false")
            .Raw("errors",
                 Array(
                     {Object()
                          .Number("code", 7003)
                          .String("message",
                                  absl::StrCat("Could not route to /zones/", id,
                                               ", perhaps your object "
                                               "identifier is invalid?"))
                          .Done()}))
            .Raw("messages", "[]")
            .Raw("result", "null")
            .Done(),
        "application/json");
  } else {
    response.status = 200;
    response.set_content(Object()
                             .Raw("result", ZoneJson(*it))
                             .Raw("success", "true")
                             .Raw("errors", "[]")
                             .Raw("messages", "[]")
                             .Done(),
                         "application/json");
  }
  entry.status = response.status;
  Log(entry);
}

}  // namespace converge::fake_cloudflare

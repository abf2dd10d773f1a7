#include "sources/cloudflare_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/absl_compat.h"
#include "sources/cloudflare_query.h"

namespace converge {
namespace cloudflare {
namespace {

// The dataset of the fetch running on this thread, or -1 outside a fetch.
// Failure counting happens deep inside the query helpers; this lets it
// attribute failures to a dataset without passing it to every call.
thread_local int t_fetch_dataset = -1;

class FetchDatasetScope {
 public:
  explicit FetchDatasetScope(Dataset dataset) {
    t_fetch_dataset = static_cast<int>(dataset);
  }
  ~FetchDatasetScope() { t_fetch_dataset = -1; }
  FetchDatasetScope(const FetchDatasetScope&) = delete;
  FetchDatasetScope& operator=(const FetchDatasetScope&) = delete;
};

constexpr absl::Duration kMinute = absl::Minutes(1);

// Characters of a server's error text kept in a status message.
constexpr size_t kMaxQuotedChars = 300;

absl::Time FloorMinute(absl::Time time) {
  return absl::UnixEpoch() + absl::Floor(time - absl::UnixEpoch(), kMinute);
}

absl::Time CeilMinute(absl::Time time) {
  return absl::UnixEpoch() + absl::Ceil(time - absl::UnixEpoch(), kMinute);
}

std::string Shorten(std::string text) {
  if (text.size() > kMaxQuotedChars) {
    text.resize(kMaxQuotedChars);
    text.append("...");
  }
  return text;
}

absl::Status InvalidOption(absl::string_view field, absl::string_view rule,
                           absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid cloudflare options: ", field, " must be ", rule, ", got ", got));
}

bool IsZoneId(const std::string& id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// Splits the selected zones into partitions: for each dataset some metric
// needs, the zones whose plan allows it, in chunks of `per_query`.
std::vector<Partition> PlanPartitions(const std::vector<ZoneInfo>& zones,
                                      const MetricSet& metrics,
                                      uint32_t per_query) {
  std::vector<Partition> partitions;
  for (int index = 0; index < kDatasetCount; ++index) {
    const auto dataset = static_cast<Dataset>(index);
    if (!metrics.NeedsDataset(dataset)) continue;
    Partition chunk{dataset, {}};
    for (const ZoneInfo& zone : zones) {
      if (zone.free_plan && !DatasetAllowedOnFreePlan(dataset)) continue;
      chunk.zones.push_back(zone);
      if (chunk.zones.size() == per_query) {
        partitions.push_back(std::move(chunk));
        chunk = Partition{dataset, {}};
      }
    }
    if (!chunk.zones.empty()) partitions.push_back(std::move(chunk));
  }
  return partitions;
}

void LogBudget(const BudgetPlan& plan, const CloudflareOptions& options) {
  const absl::Duration poll = options.lanes.poll_interval;
  const std::string numbers = plan.Describe(poll, options.query_budget);
  const std::string shared =
      options.cluster_members > 1
          ? absl::StrCat(" With ", options.cluster_members,
                         " cluster members sharing one token, the token's "
                         "budget is shared too.")
          : "";
  switch (plan.verdict) {
    case BudgetPlan::Verdict::kFits:
      spdlog::info("cloudflare source: query budget fits: {}.{}", numbers,
                   shared);
      return;
    case BudgetPlan::Verdict::kBackfillSlowed:
      spdlog::warn(
          "cloudflare source: the query budget cannot hold the backfill "
          "lane at --backfill-calls-per-tick={}: {}. Backfill runs at the "
          "pace that is left.{}",
          plan.backfill_per_tick, numbers, shared);
      return;
    case BudgetPlan::Verdict::kLiveOverBudget:
      spdlog::error(
          "cloudflare source: the query budget cannot hold the live lane: {}. "
          "The API will rate-limit every poll and backfill is paused. Use "
          "--poll-interval={} or more (with --lookback at least as long), "
          "fewer zones or metrics per instance (--exclude-zones, "
          "--metrics-deny, --cluster-members), or set --cf-query-budget if "
          "Cloudflare raised your limit.{}",
          numbers, absl::FormatDuration(plan.suggested_poll_interval), shared);
      return;
  }
}

}  // namespace

std::string_view FailureCauseName(FailureCause cause) {
  switch (cause) {
    case FailureCause::kRateLimited:
      return "rate_limited";
    case FailureCause::kHttp5xx:
      return "http_5xx";
    case FailureCause::kHttp4xx:
      return "http_4xx";
    case FailureCause::kTimeout:
      return "timeout";
    case FailureCause::kConnection:
      return "connection";
    case FailureCause::kHtml:
      return "html_page";
    case FailureCause::kMalformed:
      return "malformed_json";
    case FailureCause::kGraphql:
      return "graphql_error";
    case FailureCause::kZoneDenied:
      return "zone_denied";
    case FailureCause::kTruncated:
      return "row_limit_truncated";
    case FailureCause::kTooOld:
      return "data_too_old";
  }
  return "unknown";
}

// --- Construction -----------------------------------------------------------

absl::StatusOr<std::unique_ptr<CloudflareSource>> CloudflareSource::Create(
    const CloudflareOptions& options, Clock wall_clock) {
  if (absl::Status status = ValidateCloudflareOptions(options); !status.ok()) {
    return status;
  }
  absl::StatusOr<MetricSet> metrics =
      ResolveMetricSet(options.metrics_allow, options.metrics_deny);
  if (!metrics.ok()) return metrics.status();
  auto client =
      std::make_shared<CloudflareClient>(options.credentials, options.timeout);

  // Zones: the listed ones, or every zone the credentials can read.
  absl::StatusOr<std::vector<ZoneInfo>> listed =
      options.zones.empty()
          ? ListZones(*client, options.rest_url)
          : GetZones(*client, options.rest_url, options.zones);
  if (!listed.ok()) return listed.status();
  const size_t listed_count = listed->size();
  ZoneSelection selection =
      SelectZones(*std::move(listed), options.exclude_zones,
                  options.cluster_members, options.cluster_member_index);
  spdlog::info(
      "cloudflare source: {} zones {}, {} selected ({} excluded, {} not "
      "active, {} owned by other cluster members; this is member {} of {})",
      listed_count, options.zones.empty() ? "listed" : "requested",
      selection.zones.size(), selection.excluded, selection.inactive,
      selection.not_owned, options.cluster_member_index,
      options.cluster_members);
  if (selection.zones.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no zone left to query out of ", listed_count,
        " after --exclude-zones, inactive zones and cluster ownership "
        "(member ",
        options.cluster_member_index, " of ", options.cluster_members, ")"));
  }

  // Free-plan zones cannot query the per-minute dataset: one line each.
  uint64_t free_plan_zones = 0;
  for (const ZoneInfo& zone : selection.zones) {
    if (!zone.free_plan) continue;
    ++free_plan_zones;
    if (metrics->NeedsDataset(Dataset::kHttp1m)) {
      spdlog::info(
          "cloudflare source: zone {} ({}) is on the Free plan, which has no "
          "httpRequests1mGroups: its cloudflare_zone_requests_total and the "
          "other per-minute HTTP series are not exported; "
          "httpRequestsAdaptiveGroups and dnsAnalyticsAdaptiveGroups are",
          zone.name, zone.id);
    }
  }
  if (free_plan_zones > 0) {
    spdlog::info("cloudflare source: {} of {} zones are on the Free plan",
                 free_plan_zones, selection.zones.size());
  }

  std::vector<Partition> partitions =
      PlanPartitions(selection.zones, *metrics, options.zones_per_query);
  if (partitions.empty()) {
    return absl::FailedPreconditionError(
        "nothing to query: every selected zone is on the Free plan and "
        "every allowed metric comes from httpRequests1mGroups");
  }

  const absl::Time start =
      options.clock_start.has_value() ? *options.clock_start : wall_clock();
  auto source = std::unique_ptr<CloudflareSource>(
      new CloudflareSource(options, std::move(wall_clock), *metrics,
                           std::move(client), std::move(partitions), start));
  source->free_plan_zones_ = free_plan_zones;
  LogBudget(source->budget_, options);

  return source;
}

CloudflareSource::CloudflareSource(const CloudflareOptions& options,
                                   Clock wall_clock, MetricSet metrics,
                                   std::shared_ptr<CloudflareClient> client,
                                   std::vector<Partition> partitions,
                                   absl::Time start)
    : options_(options),
      wall_clock_(std::move(wall_clock)),
      metrics_(metrics),
      client_(std::move(client)),
      partitions_(std::move(partitions)),
      start_(start),
      budget_(PlanBudget(static_cast<uint32_t>(partitions_.size()),
                         options.lanes.backfill_calls_per_tick,
                         options.lanes.poll_interval, options.query_budget)),
      gate_(wall_clock_),
      planner_(options.lanes, start, static_cast<uint32_t>(partitions_.size())),
      backfill_allowance_(budget_.backfill_allowed_per_tick,
                          options.lanes.backfill_calls_per_tick),
      pacer_(options.lanes.poll_interval) {
  for (int index = 0; index < kDatasetCount; ++index) {
    const auto dataset = static_cast<Dataset>(index);
    if (metrics_.NeedsDataset(dataset)) {
      query_text_[index] = BuildQueryText(dataset, metrics_);
    }
  }
  spdlog::info(
      "cloudflare source: {} partitions (zone chunks of up to {} x "
      "datasets), backfill {} chunks, {} clock from {}",
      partitions_.size(), options_.zones_per_query,
      planner_.backfill_chunks_total(),
      options_.clock_start.has_value() ? "simulated" : "wall",
      FormatApiTime(start_));
}

CloudflareSource::~CloudflareSource() { LogStats(); }

void CloudflareSource::LogStats() const {
  const CloudflareStats stats = cloudflare_stats();
  std::vector<std::string> failures;
  for (int index = 0; index < kFailureCauseCount; ++index) {
    failures.push_back(
        absl::StrCat(ToAbsl(FailureCauseName(static_cast<FailureCause>(index))),
                     "=", stats.failures[index]));
  }
  spdlog::info(
      "cloudflare source: queries={} failures: {}; fetches_paused={} "
      "rate_limit_pauses={} row_limit_splits={} zero_filled={} "
      "zones_left_out={} free_plan_zones={}",
      stats.queries, absl::StrJoin(failures, " "), stats.fetches_paused,
      stats.rate_limit_pauses, stats.row_limit_splits, stats.zero_filled,
      stats.zones_left_out, stats.free_plan_zones);
}

CloudflareStats CloudflareSource::cloudflare_stats() const {
  CloudflareStats stats;
  stats.queries = queries_.load(std::memory_order_relaxed);
  stats.fetches_paused = fetches_paused_.load(std::memory_order_relaxed);
  stats.rate_limit_pauses = gate_.pauses();
  stats.row_limit_splits = row_limit_splits_.load(std::memory_order_relaxed);
  stats.zero_filled = zero_filled_.load(std::memory_order_relaxed);
  stats.zones_left_out = zones_left_out_.load(std::memory_order_relaxed);
  stats.free_plan_zones = free_plan_zones_;
  for (int index = 0; index < kFailureCauseCount; ++index) {
    stats.failures[index] = failures_[index].load(std::memory_order_relaxed);
  }
  for (int dataset = 0; dataset < kDatasetCount; ++dataset) {
    stats.queries_by_dataset[dataset] =
        queries_by_dataset_[dataset].load(std::memory_order_relaxed);
    for (int cause = 0; cause < kFailureCauseCount; ++cause) {
      stats.failures_by_dataset[dataset][cause] =
          failures_by_dataset_[dataset][cause].load(std::memory_order_relaxed);
    }
  }
  return stats;
}

// --- Planning (scheduler thread) --------------------------------------------

std::optional<TickPlan> CloudflareSource::NextTick(std::stop_token stop) {
  if (stop.stop_requested()) return std::nullopt;

  // Statuses the previous tick saw count for the zero fill from now on.
  known_statuses_.Commit();

  absl::Time now;
  if (options_.clock_start.has_value()) {
    // Simulated time does not advance while the API rejects queries.
    now = start_ +
          options_.lanes.poll_interval * static_cast<int64_t>(next_tick_);
    if (now > start_ + options_.clock_duration) return std::nullopt;
    if (!gate_.WaitUntilOpen(stop)) return std::nullopt;
  } else {
    if (!pacer_.WaitUntilDue(next_tick_, stop)) return std::nullopt;
    // Tick 0 runs at the start the lanes were planned from: a later `now`
    // would open a gap of a few milliseconds before the live range, which
    // the gap lane would spend a call on.
    now = next_tick_ == 0 ? start_ : wall_clock_();
  }

  // The live lane always runs. Gap and backfill calls beyond query the
  // budget allows this tick go back to the planner as not done, so they come
  // first on a later tick.
  TickPlan planned = planner_.Plan(next_tick_, now);
  TickPlan plan;
  plan.tick = planned.tick;
  plan.now = planned.now;
  const int allowed = backfill_allowance_.StartTick();
  int extra_calls = 0;
  for (FetchTask& task : planned.tasks) {
    if (task.lane != Lane::kLive) {
      if (extra_calls == allowed) {
        planner_.OnTaskDone(task, false);
        continue;
      }
      ++extra_calls;
    }
    task.index = static_cast<uint32_t>(plan.tasks.size());
    plan.tasks.push_back(task);
  }
  backfill_allowance_.Spend(extra_calls);

  // The counters, every few minutes of wall time.
  constexpr auto kStatsInterval = std::chrono::minutes(10);
  if (const auto wall = std::chrono::steady_clock::now();
      wall - last_stats_log_ >= kStatsInterval) {
    last_stats_log_ = wall;
    LogStats();
  }

  ++next_tick_;
  return plan;
}

converge::SourceStats CloudflareSource::Stats() const {
  converge::SourceStats stats;
  stats.backfill_chunks_total = planner_.backfill_chunks_total();
  stats.backfill_chunks_done = planner_.backfill_chunks_done();
  stats.gap_scheduled = planner_.gap_scheduled();

  const CloudflareStats cloudflare = cloudflare_stats();
  stats.api_queries = cloudflare.queries;
  stats.api_budget_per_tick = budget_.budget_per_tick;
  stats.api_needed_per_tick =
      budget_.live_per_tick +
      std::min<double>(budget_.backfill_per_tick,
                       budget_.backfill_allowed_per_tick);
  for (int dataset = 0; dataset < kDatasetCount; ++dataset) {
    stats.api_queries_by_dataset[std::string(
        DatasetName(static_cast<Dataset>(dataset)))] =
        cloudflare.queries_by_dataset[dataset];
  }
  for (int i = 0; i < kFailureCauseCount; ++i) {
    const auto cause = static_cast<FailureCause>(i);
    const std::string cause_name(FailureCauseName(cause));
    uint64_t in_fetches = 0;
    for (int dataset = 0; dataset < kDatasetCount; ++dataset) {
      const uint64_t count = cloudflare.failures_by_dataset[dataset][i];
      in_fetches += count;
      if (count > 0) {
        stats.failures[{std::string(DatasetName(static_cast<Dataset>(dataset))),
                        cause_name}] = count;
      }
    }
    // Failures outside a fetch, such as listing the zones.
    if (cloudflare.failures_of(cause) > in_fetches) {
      stats.failures[{"none", cause_name}] =
          cloudflare.failures_of(cause) - in_fetches;
    }
  }
  return stats;
}

void CloudflareSource::OnTaskDone(const FetchTask& task,
                                  const absl::Status& status) {
  backfill_progress_.OnTaskDone(planner_, task, status.ok());
}


// --- Fetching (any fetcher thread) ------------------------------------------

absl::Status CloudflareSource::Fetch(const FetchTask& task,
                                     ObservationBatch* out) {
  if (task.partition >= partitions_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cloudflare fetch: partition ", task.partition,
                     " does not exist (", partitions_.size(), " partitions)"));
  }
  const Partition& partition = partitions_[task.partition];
  const FetchDatasetScope dataset_scope(partition.dataset);

  // A rate-limit pause stops every fetcher, and the lanes retry later.
  if (const absl::Duration left = gate_.Remaining();
      left > absl::ZeroDuration()) {
    fetches_paused_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError(absl::StrCat(
        "Cloudflare API rate limit: every fetch is paused for another ",
        absl::FormatDuration(absl::Ceil(left, absl::Seconds(1)))));
  }

  // Whole minutes of the range that have ended by the task's time, for the
  // zones not in backoff.
  std::vector<const ZoneInfo*> zones;
  for (const ZoneInfo& zone : partition.zones) {
    if (!zone_backoff_.Blocked(zone.id, partition.dataset, task.now)) {
      zones.push_back(&zone);
    }
  }
  const absl::Time start = CeilMinute(task.range.start);
  const absl::Time end =
      std::min(CeilMinute(task.range.end), FloorMinute(task.now));
  if (zones.empty() || start >= end) return absl::OkStatus();

  // Query, then turn the rows into observations in the partition's zone
  // order.
  RowsByZone rows;
  if (absl::Status status =
          QueryRange(partition.dataset, zones, start, end, task.now, &rows);
      !status.ok()) {
    return status;
  }
  std::vector<ZoneInput> inputs;
  std::vector<const ZoneInfo*> input_zones;
  for (const ZoneInfo* zone : zones) {
    auto it = rows.find(zone->id);
    if (it == rows.end() || it->second.size() == 0) continue;
    inputs.push_back(
        ZoneInput{&it->second, zone->name,
                  known_statuses_.Committed(zone->id, partition.dataset)});
    input_zones.push_back(zone);
  }
  std::vector<ZoneOutput> outputs =
      FlattenZones(inputs, partition.dataset, metrics_);

  // Everything or nothing: a failed zone fails the fetch.
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].status.ok()) {
      return absl::InternalError(absl::StrCat(
          "cloudflare fetch: cannot build the series of zone ",
          input_zones[i]->name, ": ", outputs[i].status.message()));
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    known_statuses_.Record(input_zones[i]->id, partition.dataset,
                           outputs[i].seen);
    zero_filled_.fetch_add(outputs[i].zero_filled, std::memory_order_relaxed);
    const ObservationBatch& observations = outputs[i].observations;
    for (size_t j = 0; j < observations.size(); ++j) out->Add(observations[j]);
  }
  return absl::OkStatus();
}

absl::Status CloudflareSource::QueryRange(Dataset dataset,
                                          std::vector<const ZoneInfo*> zones,
                                          absl::Time start, absl::Time end,
                                          absl::Time now, RowsByZone* rows) {
  // Send.
  std::vector<std::string> tags;
  for (const ZoneInfo* zone : zones) tags.push_back(zone->id);
  const std::string body =
      BuildRequestBody(query_text_[static_cast<size_t>(dataset)], tags, start,
                       end, options_.row_limit);
  const std::string query = absl::StrCat(
      ToAbsl(DatasetName(dataset)), " for ", zones.size(), " zones over [",
      FormatApiTime(start), ", ", FormatApiTime(end), ")");
  queries_.fetch_add(1, std::memory_order_relaxed);
  queries_by_dataset_[static_cast<size_t>(dataset)].fetch_add(
      1, std::memory_order_relaxed);
  TransportFailure failure = TransportFailure::kNone;
  absl::StatusOr<HttpResponse> response =
      client_->Post(options_.graphql_url, body, &failure);
  if (!response.ok()) {
    const FailureCause cause =
        failure == TransportFailure::kTimeout    ? FailureCause::kTimeout
        : failure == TransportFailure::kTooLarge ? FailureCause::kMalformed
                                                 : FailureCause::kConnection;
    return Fail(cause,
                absl::UnavailableError(absl::StrCat(
                    "query ", query, ": ", response.status().message())));
  }

  // The HTTP status: rate limits and server errors carry no data.
  const bool html = LooksLikeHtml(response->body);
  if (response->status == 429) {
    PauseEveryFetcher(
        response->retry_after.value_or(options_.rate_limit_backoff),
        response->retry_after.has_value() ? "HTTP 429 with Retry-After"
                                          : "HTTP 429 without Retry-After");
    return Fail(FailureCause::kRateLimited,
                absl::UnavailableError(absl::StrCat(
                    "query ", query, ": HTTP 429 (rate limited)")));
  }
  if (response->status >= 500) {
    return Fail(
        html ? FailureCause::kHtml : FailureCause::kHttp5xx,
        absl::UnavailableError(absl::StrCat(
            "query ", query, ": HTTP ", response->status,
            html ? " with an HTML error page"
                 : absl::StrCat(": ",
                                Shorten(client_->Redact(response->body))))));
  }

  // The body. A non-200 response is read only for its errors array.
  absl::StatusOr<GraphqlResponse> parsed =
      ParseGraphqlResponse(response->body, dataset);
  if (response->status != 200 && (!parsed.ok() || parsed->errors.empty())) {
    const FailureCause cause =
        html ? FailureCause::kHtml : FailureCause::kHttp4xx;
    const std::string message = absl::StrCat(
        "query ", query, ": HTTP ", response->status,
        html ? " with an HTML page"
             : absl::StrCat(": ", Shorten(client_->Redact(response->body))));
    if (response->status == 401 || response->status == 403) {
      return Fail(cause, absl::PermissionDeniedError(
                             absl::StrCat(message,
                                          ". Check the API token and its "
                                          "Analytics:Read permission")));
    }
    return Fail(cause, absl::UnavailableError(message));
  }
  if (!parsed.ok()) {
    return Fail(html ? FailureCause::kHtml : FailureCause::kMalformed,
                absl::UnavailableError(absl::StrCat(
                    "query ", query, ": ", parsed.status().message())));
  }
  if (!parsed->errors.empty()) {
    return HandleErrors(dataset, zones, parsed->errors, start, end, now, rows);
  }

  // Rows: a zone at the row limit may have lost rows, so the range is
  // fetched again in halves, down to single minutes.
  std::map<std::string, ZoneRows*> answered;
  for (ZoneRows& zone_rows : parsed->zones) {
    answered[zone_rows.zone_tag] = &zone_rows;
  }
  bool at_limit = false;
  for (const auto& [tag, zone_rows] : answered) {
    if (zone_rows->size() >= options_.row_limit) at_limit = true;
  }
  if (at_limit && end - start > kMinute) {
    row_limit_splits_.fetch_add(1, std::memory_order_relaxed);
    return Split(dataset, zones, start, end, now, rows);
  }

  for (const ZoneInfo* zone : zones) {
    auto it = answered.find(zone->id);
    if (it == answered.end()) continue;  // no data for this zone
    ZoneRows& zone_rows = *it->second;
    if (zone_rows.size() >= options_.row_limit) {
      // One minute alone fills the limit: its rows are incomplete, and
      // pushing them would report too little (and zero-fill the rest).
      Count(FailureCause::kTruncated);
      uint64_t suppressed = 0;
      if (truncation_log_.Allow(&suppressed)) {
        spdlog::error(
            "cloudflare source: zone {} ({}) returned {} rows of {} for the "
            "single minute {}, the row limit: dropping that minute. Raise "
            "--cf-row-limit (at most 9999) or deny the metric ({} similar "
            "lines suppressed)",
            zone->name, zone->id, zone_rows.size(), DatasetName(dataset),
            FormatApiTime(start), suppressed);
      }
      continue;
    }
    ZoneRows& merged = (*rows)[zone->id];
    merged.zone_tag = zone->id;
    std::move(zone_rows.http1m.begin(), zone_rows.http1m.end(),
              std::back_inserter(merged.http1m));
    std::move(zone_rows.adaptive.begin(), zone_rows.adaptive.end(),
              std::back_inserter(merged.adaptive));
    std::move(zone_rows.dns.begin(), zone_rows.dns.end(),
              std::back_inserter(merged.dns));
  }
  return absl::OkStatus();
}

absl::Status CloudflareSource::HandleErrors(
    Dataset dataset, const std::vector<const ZoneInfo*>& zones,
    const std::vector<GraphqlError>& errors, absl::Time start, absl::Time end,
    absl::Time now, RowsByZone* rows) {
  const std::string query = absl::StrCat(
      ToAbsl(DatasetName(dataset)), " for ", zones.size(), " zones over [",
      FormatApiTime(start), ", ", FormatApiTime(end), ")");
  const auto message_of = [&](const GraphqlError& error) {
    return Shorten(client_->Redact(error.message));
  };

  // A rate limit voids the whole response, whatever its other errors.
  for (const GraphqlError& error : errors) {
    if (Classify(error) != ErrorKind::kRateLimited) continue;
    PauseEveryFetcher(
        DelayInMessage(error.message).value_or(options_.rate_limit_backoff),
        absl::StrCat("\"", message_of(error), "\""));
    return Fail(FailureCause::kRateLimited,
                absl::UnavailableError(absl::StrCat(
                    "query ", query, ": rate limited: ", message_of(error))));
  }

  // An error about the query as a whole fails it, unless the whole range is
  // older than the plan keeps.
  bool too_large = false;
  for (const GraphqlError& error : errors) {
    const ErrorKind kind = Classify(error);
    const bool names_known_zone =
        error.zone_index.has_value() && *error.zone_index < zones.size();
    if (kind == ErrorKind::kTooOld && !names_known_zone) {
      Count(FailureCause::kTooOld);
      LogTooOld(dataset, nullptr, start, message_of(error));
      return absl::OkStatus();
    }
    if (kind == ErrorKind::kTooLarge) {
      too_large = true;
    } else if (!names_known_zone) {
      return Fail(FailureCause::kGraphql,
                  absl::UnavailableError(absl::StrCat(
                      "query ", query, ": ", errors.size(),
                      " GraphQL errors, the first: ", message_of(error))));
    }
  }
  if (too_large) {
    if (end - start > kMinute) {
      row_limit_splits_.fetch_add(1, std::memory_order_relaxed);
      return Split(dataset, zones, start, end, now, rows);
    }
    return Fail(FailureCause::kGraphql,
                absl::UnavailableError(
                    absl::StrCat("query ", query,
                                 ": the API rejects even one minute as too "
                                 "large: ",
                                 message_of(errors.front()))));
  }

  // Errors naming zones: leave those zones out of this query, and out of
  // the dataset for a long backoff unless only the range is too old for
  // them. Then query the others again.
  std::vector<bool> denied(zones.size(), false);
  for (const GraphqlError& error : errors) {
    const size_t index = *error.zone_index;
    if (denied[index]) continue;
    denied[index] = true;
    const ZoneInfo& zone = *zones[index];
    if (Classify(error) == ErrorKind::kTooOld) {
      Count(FailureCause::kTooOld);
      LogTooOld(dataset, &zone, start, message_of(error));
      continue;
    }
    Count(FailureCause::kZoneDenied);
    if (zone_backoff_.Block(zone.id, dataset, now,
                            now + options_.zone_error_backoff)) {
      zones_left_out_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn(
          "cloudflare source: zone {} ({}) cannot query {}: \"{}\"; leaving "
          "it out of that dataset for {} and querying the other zones",
          zone.name, zone.id, DatasetName(dataset), message_of(error),
          absl::FormatDuration(options_.zone_error_backoff));
    }
  }
  std::vector<const ZoneInfo*> remaining;
  for (size_t i = 0; i < zones.size(); ++i) {
    if (!denied[i]) remaining.push_back(zones[i]);
  }
  if (remaining.empty()) return absl::OkStatus();
  return QueryRange(dataset, std::move(remaining), start, end, now, rows);
}

absl::Status CloudflareSource::Split(Dataset dataset,
                                     const std::vector<const ZoneInfo*>& zones,
                                     absl::Time start, absl::Time end,
                                     absl::Time now, RowsByZone* rows) {
  absl::Time middle = start + absl::Floor((end - start) / 2, kMinute);
  if (middle <= start) middle = start + kMinute;

  // Halves merge into a copy, so a failed second half leaves `rows` as it
  // was and the fetch fails as a whole.
  RowsByZone halves = *rows;
  if (absl::Status status =
          QueryRange(dataset, zones, start, middle, now, &halves);
      !status.ok()) {
    return status;
  }
  if (absl::Status status =
          QueryRange(dataset, zones, middle, end, now, &halves);
      !status.ok()) {
    return status;
  }
  *rows = std::move(halves);
  return absl::OkStatus();
}

void CloudflareSource::LogTooOld(Dataset dataset, const ZoneInfo* zone,
                                 absl::Time start, const std::string& message) {
  uint64_t suppressed = 0;
  if (!too_old_log_.Allow(&suppressed)) return;
  spdlog::warn(
      "cloudflare source: {} keeps no {} data from {}: \"{}\"; skipping "
      "that range. Lower --max-backfill to query the plan keeps ({} similar "
      "lines suppressed)",
      zone == nullptr ? std::string("the plan")
                      : absl::StrCat("zone ", zone->name, " (", zone->id, ")"),
      DatasetName(dataset), FormatApiTime(start), message, suppressed);
}

void CloudflareSource::PauseEveryFetcher(absl::Duration delay,
                                         std::string_view reason) {
  if (gate_.Pause(delay)) {
    spdlog::warn(
        "cloudflare source: rate limited by the API ({}): pausing every "
        "fetcher for {}",
        reason, absl::FormatDuration(delay));
  }
}

absl::Status CloudflareSource::Fail(FailureCause cause, absl::Status status) {
  Count(cause);
  return status;
}

void CloudflareSource::Count(FailureCause cause) {
  failures_[static_cast<size_t>(cause)].fetch_add(1, std::memory_order_relaxed);
  if (t_fetch_dataset >= 0) {
    failures_by_dataset_[static_cast<size_t>(t_fetch_dataset)]
                        [static_cast<size_t>(cause)]
                            .fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace cloudflare

// --- Public API
// ---------------------------------------------------------------

absl::Status ValidateCloudflareOptions(const CloudflareOptions& options) {
  using cloudflare::InvalidOption;

  // Credentials and endpoints.
  const CloudflareCredentials& credentials = options.credentials;
  if (credentials.api_token.empty() &&
      (credentials.email.empty() || credentials.api_key.empty())) {
    return absl::InvalidArgumentError(
        "invalid cloudflare options: missing credentials; give an API token "
        "(CF_API_TOKEN or --cf-api-token-file) or both CF_API_EMAIL and "
        "CF_API_KEY");
  }
  if (absl::Status status =
          cloudflare::ValidateApiUrl("cf-api-url", options.graphql_url);
      !status.ok()) {
    return status;
  }
  if (absl::Status status =
          cloudflare::ValidateApiUrl("cf-rest-url", options.rest_url);
      !status.ok()) {
    return status;
  }

  // Zones and metrics.
  for (const std::string& id : options.zones) {
    if (!cloudflare::IsZoneId(id)) {
      return InvalidOption("every entry of zones",
                           "a zone ID (letters, digits, '-' and '_')",
                           absl::StrCat("\"", id, "\""));
    }
  }
  if (absl::StatusOr<cloudflare::MetricSet> metrics =
          cloudflare::ResolveMetricSet(options.metrics_allow,
                                       options.metrics_deny);
      !metrics.ok()) {
    return metrics.status();
  }

  // Limits and durations.
  if (options.timeout <= absl::ZeroDuration() ||
      options.timeout == absl::InfiniteDuration()) {
    return InvalidOption("timeout", "finite and > 0",
                         absl::FormatDuration(options.timeout));
  }
  if (options.zones_per_query < 1 || options.zones_per_query > 10) {
    return InvalidOption("zones_per_query", "from 1 to 10",
                         absl::StrCat(options.zones_per_query));
  }
  if (options.row_limit < 1 || options.row_limit > 9999) {
    return InvalidOption("row_limit", "from 1 to 9999",
                         absl::StrCat(options.row_limit));
  }
  if (options.query_budget < 1) {
    return InvalidOption("query_budget", ">= 1",
                         absl::StrCat(options.query_budget));
  }
  for (const auto& [field, value] :
       {std::pair<absl::string_view, absl::Duration>{
            "rate_limit_backoff", options.rate_limit_backoff},
        {"zone_error_backoff", options.zone_error_backoff}}) {
    if (value <= absl::ZeroDuration() || value == absl::InfiniteDuration()) {
      return InvalidOption(field, "finite and > 0",
                           absl::FormatDuration(value));
    }
  }

  // Cluster and clock.
  if (options.cluster_members < 1) {
    return InvalidOption("cluster_members", ">= 1",
                         absl::StrCat(options.cluster_members));
  }
  if (options.cluster_member_index >= options.cluster_members) {
    return InvalidOption(
        "cluster_member_index",
        absl::StrCat("below cluster_members (", options.cluster_members, ")"),
        absl::StrCat(options.cluster_member_index));
  }
  if (options.clock_start.has_value()) {
    if (*options.clock_start == absl::InfiniteFuture() ||
        *options.clock_start == absl::InfinitePast()) {
      return InvalidOption("clock_start", "a finite time",
                           absl::FormatTime(*options.clock_start));
    }
    if (options.clock_duration <= absl::ZeroDuration() ||
        options.clock_duration == absl::InfiniteDuration()) {
      return InvalidOption("clock_duration",
                           "finite and > 0 with a simulated clock",
                           absl::FormatDuration(options.clock_duration));
    }
  } else if (options.clock_duration != absl::ZeroDuration()) {
    return InvalidOption("clock_duration", "0 without clock_start",
                         absl::FormatDuration(options.clock_duration));
  }
  return ValidateLaneOptions(options.lanes);
}

std::vector<std::string> CloudflareMetricNames() {
  std::vector<std::string> names;
  for (const cloudflare::MetricInfo& info : cloudflare::Metrics()) {
    names.emplace_back(info.name);
  }
  return names;
}

absl::StatusOr<std::unique_ptr<Source>> MakeCloudflareSource(
    const CloudflareOptions& options) {
  absl::StatusOr<std::unique_ptr<cloudflare::CloudflareSource>> source =
      cloudflare::CloudflareSource::Create(options);
  if (!source.ok()) return source.status();
  return std::unique_ptr<Source>(*std::move(source));
}

}  // namespace converge

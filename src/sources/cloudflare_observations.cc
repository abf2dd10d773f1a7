#include "sources/cloudflare_observations.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <map>
#include <span>
#include <string_view>
#include <tuple>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/absl_compat.h"
#include "core/series_encoder.h"

#ifndef CONVERGE_TSAN
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#endif

namespace converge::cloudflare {
namespace {

using LabelView = SeriesEncoder::LabelView;

// Collects the observations of one zone. The first failure to build a
// series key is kept and later ones are ignored.
class Emitter {
 public:
  Emitter(const MetricSet& metrics, const std::string& zone_label,
          ZoneOutput* output)
      : metrics_(metrics), zone_label_(zone_label), output_(output) {}

  // Emits `metric`{zone, extra...} = value at `bucket_ms` if it is enabled.
  // The key is encoded into reused memory and copied into the zone's batch,
  // so emitting allocates only when the batch grows.
  void Emit(Metric metric, int64_t bucket_ms, uint64_t value,
            std::initializer_list<LabelView> extra = {}) {
    if (!metrics_.Has(metric) || !output_->status.ok()) return;
    std::array<LabelView, kMaxLabels> labels;
    if (extra.size() + 1 > labels.size()) {
      output_->status = absl::InternalError(absl::StrCat(
          "invalid series of ", ToAbsl(Info(metric).name), ": ",
          extra.size() + 1, " labels, more than the ", labels.size(),
          " supported"));
      return;
    }
    std::copy(extra.begin(), extra.end(), labels.begin());
    labels[extra.size()] = {"zone", zone_label_};
    absl::StatusOr<SeriesKeyView> key = encoder_.Encode(
        Info(metric).name,
        std::span<const LabelView>(labels.data(), extra.size() + 1));
    if (!key.ok()) {
      output_->status = key.status();
      return;
    }
    output_->observations.Add(*key, bucket_ms, value);
    encoder_.Clear();
  }

 private:
  // Labels per series: the zone label plus the largest number of extra
  // labels a metric has (three, for DNS queries), with room to spare.
  static constexpr size_t kMaxLabels = 8;

  const MetricSet& metrics_;
  const std::string& zone_label_;
  ZoneOutput* const output_;
  SeriesEncoder encoder_;
};

// Adds each distinct status of a response to the zone's `seen` and `known`
// sets. Deduplicating in a hash set first saves the sorted sets a string
// comparison per row.
void AddStatuses(const absl::flat_hash_set<std::string_view>& distinct,
                 KnownStatuses::StatusSet* seen,
                 KnownStatuses::StatusSet* known) {
  for (std::string_view status : distinct) {
    seen->emplace(status);
    known->emplace(status);
  }
}

void FlattenHttp1m(const ZoneInput& input, const MetricSet& metrics,
                   ZoneOutput* output) {
  Emitter emit(metrics, input.zone_label, output);
  const std::vector<Http1mRow>& rows = input.rows->http1m;

  // Statuses known for the zero fill: committed ones and those of any
  // minute of this response.
  absl::flat_hash_set<std::string_view> distinct;
  for (const Http1mRow& row : rows) {
    for (const Http1mRow::Count& status : row.statuses) {
      distinct.insert(status.key);
    }
  }
  KnownStatuses::StatusSet known = input.known;
  AddStatuses(distinct, &output->seen, &known);

  for (const Http1mRow& row : rows) {
    const int64_t bucket = row.bucket_ms;

    // Zone totals.
    emit.Emit(Metric::kRequestsTotal, bucket, row.requests);
    emit.Emit(Metric::kRequestsCached, bucket, row.cached_requests);
    emit.Emit(Metric::kRequestsSslEncrypted, bucket, row.encrypted_requests);
    emit.Emit(Metric::kBandwidthTotal, bucket, row.bytes);
    emit.Emit(Metric::kBandwidthCached, bucket, row.cached_bytes);
    emit.Emit(Metric::kBandwidthSslEncrypted, bucket, row.encrypted_bytes);
    emit.Emit(Metric::kPageviewsTotal, bucket, row.page_views);
    emit.Emit(Metric::kThreatsTotal, bucket, row.threats);
    emit.Emit(Metric::kUniquesTotal, bucket, row.uniques);

    // Breakdowns as the response lists them.
    for (const Http1mRow::ContentType& type : row.content_types) {
      emit.Emit(Metric::kRequestsContentType, bucket, type.requests,
                {{"content_type", type.name}});
      emit.Emit(Metric::kBandwidthContentType, bucket, type.bytes,
                {{"content_type", type.name}});
    }
    for (const Http1mRow::Country& country : row.countries) {
      const std::string_view region = CountryRegion(country.code);
      emit.Emit(Metric::kRequestsCountry, bucket, country.requests,
                {{"country", country.code}, {"region", region}});
      emit.Emit(Metric::kBandwidthCountry, bucket, country.bytes,
                {{"country", country.code}, {"region", region}});
      emit.Emit(Metric::kThreatsCountry, bucket, country.threats,
                {{"country", country.code}, {"region", region}});
    }
    for (const Http1mRow::Count& browser : row.browsers) {
      emit.Emit(Metric::kRequestsBrowser, bucket, browser.value,
                {{"family", browser.key}});
    }
    for (const Http1mRow::Count& threat : row.threat_paths) {
      emit.Emit(Metric::kThreatsType, bucket, threat.value,
                {{"type", threat.key}});
    }

    // Statuses, zero-filled: this minute was returned.
    if (!metrics.Has(Metric::kRequestsStatus)) continue;
    absl::flat_hash_map<std::string_view, uint64_t> present;
    for (const Http1mRow::Count& status : row.statuses) {
      present[status.key] += status.value;
    }
    for (const std::string& status : known) {
      auto it = present.find(status);
      if (it == present.end()) ++output->zero_filled;
      emit.Emit(Metric::kRequestsStatus, bucket,
                it == present.end() ? 0 : it->second, {{"status", status}});
    }
  }
}

void FlattenAdaptive(const ZoneInput& input, const MetricSet& metrics,
                     ZoneOutput* output) {
  Emitter emit(metrics, input.zone_label, output);

  // Counts per returned minute, in minute order; a repeated (minute, status)
  // group adds up.
  absl::btree_map<int64_t, absl::flat_hash_map<std::string_view, uint64_t>>
      minutes;
  absl::flat_hash_set<std::string_view> distinct;
  for (const AdaptiveRow& row : input.rows->adaptive) {
    minutes[row.bucket_ms][row.status] += row.count;
    distinct.insert(row.status);
  }
  KnownStatuses::StatusSet known = input.known;
  AddStatuses(distinct, &output->seen, &known);

  for (const auto& [bucket, present] : minutes) {
    for (const std::string& status : known) {
      auto it = present.find(status);
      if (it == present.end()) ++output->zero_filled;
      emit.Emit(Metric::kRequestsStatusAdaptive, bucket,
                it == present.end() ? 0 : it->second, {{"status", status}});
    }
  }
}

void FlattenDns(const ZoneInput& input, const MetricSet& metrics,
                ZoneOutput* output) {
  Emitter emit(metrics, input.zone_label, output);

  // Sums per (minute, response code, query type, IP version) and per minute;
  // a repeated group adds up instead of becoming a second observation.
  using GroupKey =
      std::tuple<int64_t, std::string_view, std::string_view, std::string_view>;
  absl::btree_map<GroupKey, uint64_t> queries;
  struct MinuteSums {
    uint64_t stale = 0;
    uint64_t uncached = 0;
  };
  absl::btree_map<int64_t, MinuteSums> minutes;
  for (const DnsRow& row : input.rows->dns) {
    queries[GroupKey(row.bucket_ms, row.response_code, row.query_type,
                     row.ip_version)] += row.count;
    MinuteSums& sums = minutes[row.bucket_ms];
    sums.stale += row.stale;
    sums.uncached += row.uncached;
  }

  for (const auto& [key, count] : queries) {
    const auto& [bucket, response_code, query_type, ip_version] = key;
    emit.Emit(Metric::kDnsQueries, bucket, count,
              {{"response_code", response_code},
               {"query_type", query_type},
               {"ip_version", ip_version}});
  }
  for (const auto& [bucket, sums] : minutes) {
    emit.Emit(Metric::kDnsStale, bucket, sums.stale);
    emit.Emit(Metric::kDnsUncached, bucket, sums.uncached);
  }
}

void FlattenZone(const ZoneInput& input, Dataset dataset,
                 const MetricSet& metrics, ZoneOutput* output) {
  switch (dataset) {
    case Dataset::kHttp1m:
      FlattenHttp1m(input, metrics, output);
      return;
    case Dataset::kHttpAdaptive:
      FlattenAdaptive(input, metrics, output);
      return;
    case Dataset::kDns:
      FlattenDns(input, metrics, output);
      return;
  }
}

}  // namespace

KnownStatuses::StatusSet KnownStatuses::Committed(const std::string& zone_id,
                                                  Dataset dataset) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = committed_.find(Key(zone_id, static_cast<int>(dataset)));
  return it == committed_.end() ? StatusSet() : it->second;
}

void KnownStatuses::Record(const std::string& zone_id, Dataset dataset,
                           const StatusSet& statuses) {
  if (statuses.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  pending_[Key(zone_id, static_cast<int>(dataset))].insert(statuses.begin(),
                                                           statuses.end());
}

void KnownStatuses::Commit() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [key, statuses] : pending_) {
    committed_[key].insert(statuses.begin(), statuses.end());
  }
  pending_.clear();
}

std::vector<ZoneOutput> FlattenZones(std::span<const ZoneInput> zones,
                                     Dataset dataset,
                                     const MetricSet& metrics) {
  std::vector<ZoneOutput> outputs(zones.size());
  size_t rows = 0;
  for (const ZoneInput& zone : zones) rows += zone.rows->size();

#ifdef CONVERGE_TSAN
  // Debian's libtbb is not instrumented for ThreadSanitizer, which would
  // report its task hand-offs as races, so TSan builds run serially.
  (void)rows;
  for (size_t i = 0; i < zones.size(); ++i) {
    FlattenZone(zones[i], dataset, metrics, &outputs[i]);
  }
#else
  if (rows < kParallelMinRows || zones.size() < 2) {
    for (size_t i = 0; i < zones.size(); ++i) {
      FlattenZone(zones[i], dataset, metrics, &outputs[i]);
    }
  } else {
    // Each task writes only its own zone's output.
    tbb::parallel_for(tbb::blocked_range<size_t>(0, zones.size(), 1),
                      [&](const tbb::blocked_range<size_t>& range) {
                        for (size_t i = range.begin(); i < range.end(); ++i) {
                          FlattenZone(zones[i], dataset, metrics, &outputs[i]);
                        }
                      });
  }
#endif
  return outputs;
}

}  // namespace converge::cloudflare

#include "report/report_tables.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace converge {
namespace {

double Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0
                    : 100.0 * static_cast<double>(part) /
                          static_cast<double>(whole);
}

void AppendCsvRow(std::string* csv, std::string_view table,
                  const std::string& key, std::string_view metric,
                  double value) {
  absl::StrAppendFormat(csv, "%s,%s,%s,%.10g\n", table, key, metric, value);
}

}  // namespace

std::string FormatReportTable(const ConvergenceReport& report) {
  std::string text;
  const SettleResult& settle = report.settle;

  // Input.
  absl::StrAppend(&text, "Input: ", report.input, "\n");
  absl::StrAppendFormat(
      &text,
      "Ticks %d, fetches %d (%d failed), observations %d, series %d, "
      "(series, bucket) pairs %d\n",
      report.ticks, report.fetches_ok + report.fetches_failed,
      report.fetches_failed, report.observations, report.series,
      report.buckets);
  absl::StrAppend(&text, "Engine: window TTL ",
                  absl::FormatDuration(report.options.window_ttl),
                  ", lookback ", absl::FormatDuration(report.options.lookback),
                  "\n\n");

  // Settle ages.
  absl::StrAppendFormat(
      &text,
      "Settling: %d buckets seen changing value are counted; left out are "
      "%d that never\nchanged while observed and %d still observed in the "
      "last tick\n",
      settle.counted, settle.unchanged, settle.open_at_end);
  if (settle.counted > 0) {
    absl::StrAppendFormat(
        &text,
        "Settle age (minutes): mean %.2f, median %.2f, p90 %.2f, max %.2f\n",
        settle.mean_minutes, settle.median_minutes, settle.p90_minutes,
        settle.max_minutes);
    absl::StrAppend(&text, "age (min)  settled\n");
    for (size_t minute = 0; minute < settle.share_by_minute.size(); ++minute) {
      absl::StrAppendFormat(&text, "%9d  %6.1f%%\n", minute,
                            settle.share_by_minute[minute] * 100);
    }
  }
  absl::StrAppend(&text, "\n");

  // Thresholds.
  absl::StrAppendFormat(&text, "%9s %13s %9s %8s %8s %8s %8s %6s %6s %9s %9s %11s\n",
                        "threshold", "pushes/bucket", "repushed", "stable",
                        "forced", "flushed", "updates", "down", "late",
                        "age mean", "age p90", "first=last");
  for (const ThresholdResult& result : report.thresholds) {
    absl::StrAppendFormat(
        &text, "%9d %13.3f %9d %8d %8d %8d %8d %6d %6d %9.2f %9.2f %10.1f%%\n",
        result.threshold, result.pushes_per_bucket, result.buckets_repushed,
        result.stats.samples_stable, result.stats.samples_forced,
        result.stats.samples_flushed, result.stats.post_stabilization_updates,
        result.stats.down_revisions, result.stats.late_dropped,
        result.first_push_age_mean_minutes, result.first_push_age_p90_minutes,
        Percent(result.first_push_last_value, result.buckets_pushed));
  }
  absl::StrAppend(
      &text,
      "repushed: buckets pushed more than once; stable/forced/flushed: "
      "samples by cause;\nupdates: post-stabilization updates; down: down "
      "revisions; late: observations dropped\nfor closed buckets; age: bucket "
      "age at first push in minutes; first=last: share of\nbuckets whose "
      "first pushed value is the last value the input showed.\n");
  return text;
}

std::string FormatReportCsv(const ConvergenceReport& report) {
  std::string csv = "table,key,metric,value\n";
  const SettleResult& settle = report.settle;

  const std::pair<const char*, double> summary[] = {
      {"ticks", static_cast<double>(report.ticks)},
      {"fetches_ok", static_cast<double>(report.fetches_ok)},
      {"fetches_failed", static_cast<double>(report.fetches_failed)},
      {"observations", static_cast<double>(report.observations)},
      {"series", static_cast<double>(report.series)},
      {"buckets", static_cast<double>(report.buckets)},
      {"window_ttl_seconds",
       absl::ToDoubleSeconds(report.options.window_ttl)},
      {"settle_counted", static_cast<double>(settle.counted)},
      {"settle_unchanged", static_cast<double>(settle.unchanged)},
      {"settle_open_at_end", static_cast<double>(settle.open_at_end)},
      {"settle_age_mean_minutes", settle.mean_minutes},
      {"settle_age_median_minutes", settle.median_minutes},
      {"settle_age_p90_minutes", settle.p90_minutes},
      {"settle_age_max_minutes", settle.max_minutes},
  };
  for (const auto& [metric, value] : summary) {
    AppendCsvRow(&csv, "summary", "", metric, value);
  }

  for (size_t minute = 0; minute < settle.share_by_minute.size(); ++minute) {
    AppendCsvRow(&csv, "settled_by_age", absl::StrCat(minute), "share",
                 settle.share_by_minute[minute]);
  }

  for (const ThresholdResult& result : report.thresholds) {
    const std::string key = absl::StrCat(result.threshold);
    const EngineStats& stats = result.stats;
    const std::pair<const char*, double> rows[] = {
        {"pushes_per_bucket", result.pushes_per_bucket},
        {"samples_stable", static_cast<double>(stats.samples_stable)},
        {"samples_forced", static_cast<double>(stats.samples_forced)},
        {"samples_flushed", static_cast<double>(stats.samples_flushed)},
        {"post_stabilization_updates",
         static_cast<double>(stats.post_stabilization_updates)},
        {"down_revisions", static_cast<double>(stats.down_revisions)},
        {"late_dropped", static_cast<double>(stats.late_dropped)},
        {"buckets_pushed", static_cast<double>(result.buckets_pushed)},
        {"buckets_repushed", static_cast<double>(result.buckets_repushed)},
        {"first_push_last_value",
         static_cast<double>(result.first_push_last_value)},
        {"first_push_age_mean_minutes", result.first_push_age_mean_minutes},
        {"first_push_age_p90_minutes", result.first_push_age_p90_minutes},
    };
    for (const auto& [metric, value] : rows) {
      AppendCsvRow(&csv, "threshold", key, metric, value);
    }
  }
  return csv;
}

}  // namespace converge

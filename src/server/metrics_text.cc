#include "server/metrics_text.h"

#include <sstream>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/str_cat.h"

namespace converge {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Builds the families in the order they are added.
class Families {
 public:
  void Counter(const std::string& name, const std::string& help, Labels labels,
               double value) {
    ClientMetric metric;
    metric.label = std::move(labels);
    metric.counter.value = value;
    Family(name, help, MetricType::Counter).metric.push_back(std::move(metric));
  }

  void Gauge(const std::string& name, const std::string& help, Labels labels,
             double value) {
    ClientMetric metric;
    metric.label = std::move(labels);
    metric.gauge.value = value;
    Family(name, help, MetricType::Gauge).metric.push_back(std::move(metric));
  }

  void HistogramFamily(const std::string& name, const std::string& help,
                       const Histogram& histogram) {
    ClientMetric metric;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < histogram.counts().size(); ++i) {
      cumulative += histogram.counts()[i];
      ClientMetric::Bucket bucket;
      bucket.cumulative_count = cumulative;
      bucket.upper_bound = i < histogram.upper_bounds().size()
                               ? histogram.upper_bounds()[i]
                               : std::numeric_limits<double>::infinity();
      metric.histogram.bucket.push_back(bucket);
    }
    metric.histogram.sample_count = histogram.count();
    metric.histogram.sample_sum = histogram.sum();
    Family(name, help, MetricType::Histogram)
        .metric.push_back(std::move(metric));
  }

  std::string Serialize() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families_);
    return out.str();
  }

 private:
  MetricFamily& Family(const std::string& name, const std::string& help,
                       MetricType type) {
    for (MetricFamily& family : families_) {
      if (family.name == name) return family;
    }
    families_.push_back(MetricFamily{name, help, type, {}});
    return families_.back();
  }

  std::vector<MetricFamily> families_;
};

constexpr std::array<Lane, kLaneCount> kLanes = {Lane::kLive, Lane::kBackfill,
                                                 Lane::kReplay, Lane::kGap};

}  // namespace

std::string RenderMetrics(const PipelineSnapshot& snapshot,
                          const ExporterInfo& info) {
  Families out;

  out.Gauge("converge_build_info", "Version and configuration; always 1.",
            {{"version", info.version},
             {"source", info.source},
             {"sink", info.sink},
             {"shards", absl::StrCat(info.shards)},
             {"fetchers", absl::StrCat(info.fetchers)},
             {"threshold", absl::StrCat(info.threshold)}},
            1);
  out.Gauge("converge_ready",
            "1 once the first fetches succeeded and the sink delivered or had "
            "nothing to deliver.",
            {}, snapshot.first_fetch_done && snapshot.sink_ready ? 1 : 0);
  out.Gauge("converge_stopping", "1 once a shutdown has begun.", {},
            snapshot.stopping ? 1 : 0);

  // Fetching, by lane.
  out.Counter("converge_ticks_started_total", "Ticks the scheduler started.",
              {}, static_cast<double>(snapshot.ticks_started));
  for (Lane lane : kLanes) {
    const LaneCounters& counters = snapshot.lanes[static_cast<size_t>(lane)];
    const std::string name(LaneName(lane));
    out.Counter("converge_observations_total",
                "Observations fetched, by lane.", {{"lane", name}},
                static_cast<double>(counters.observations));
    out.Counter("converge_fetches_total",
                "Fetch calls, by lane and outcome (skipped: queued when a "
                "stop arrived).",
                {{"lane", name}, {"outcome", "ok"}},
                static_cast<double>(counters.fetches_ok));
    out.Counter("converge_fetches_total", "", {{"lane", name}, {"outcome", "failed"}},
                static_cast<double>(counters.fetches_failed));
    out.Counter("converge_fetches_total", "",
                {{"lane", name}, {"outcome", "skipped"}},
                static_cast<double>(counters.fetches_skipped));
  }
  out.Gauge("converge_backfill_chunks", "Backfill chunks, by state.",
            {{"state", "total"}},
            static_cast<double>(snapshot.source.backfill_chunks_total));
  out.Gauge("converge_backfill_chunks", "", {{"state", "done"}},
            static_cast<double>(snapshot.source.backfill_chunks_done));
  out.Counter("converge_gap_scheduled_seconds_total",
              "Time range planned on the gap lane after live fetching fell "
              "behind.",
              {}, absl::ToDoubleSeconds(snapshot.source.gap_scheduled));

  // API use (sources with a query budget).
  for (const auto& [dataset, count] : snapshot.source.api_queries_by_dataset) {
    out.Counter("converge_api_queries_total",
                "Queries sent to the source's API, by dataset.",
                {{"dataset", dataset}}, static_cast<double>(count));
  }
  out.Gauge("converge_api_budget_queries_per_tick",
            "Queries per tick the API budget allows (0: no budget).", {},
            snapshot.source.api_budget_per_tick);
  out.Gauge("converge_api_needed_queries_per_tick",
            "Queries per tick the live and backfill lanes need.", {},
            snapshot.source.api_needed_per_tick);
  for (const auto& [key, count] : snapshot.source.failures) {
    out.Counter("converge_fetch_failures_total",
                "Failed API calls, by dataset and cause.",
                {{"dataset", key.first}, {"cause", key.second}},
                static_cast<double>(count));
  }

  // The engine, per shard.
  for (size_t i = 0; i < snapshot.shards.size(); ++i) {
    const EngineStats& engine = snapshot.shards[i].engine;
    const std::string shard = absl::StrCat(i);
    out.Counter("converge_engine_observations_total",
                "Observations ingested by the shard's engine.",
                {{"shard", shard}}, static_cast<double>(engine.observations));
    out.Counter("converge_samples_emitted_total",
                "Samples the engine emitted, by cause: stable (repeated "
                "threshold times), forced (window TTL), flushed (shutdown).",
                {{"shard", shard}, {"cause", "stable"}},
                static_cast<double>(engine.samples_stable));
    out.Counter("converge_samples_emitted_total", "",
                {{"shard", shard}, {"cause", "forced"}},
                static_cast<double>(engine.samples_forced));
    out.Counter("converge_samples_emitted_total", "",
                {{"shard", shard}, {"cause", "flushed"}},
                static_cast<double>(engine.samples_flushed));
    out.Counter("converge_post_stabilization_updates_total",
                "Values that changed after their tracker had settled.",
                {{"shard", shard}},
                static_cast<double>(engine.post_stabilization_updates));
    out.Counter("converge_down_revisions_total",
                "Changes to a value lower than the one already pushed.",
                {{"shard", shard}}, static_cast<double>(engine.down_revisions));
    out.Counter("converge_late_observations_dropped_total",
                "Observations for a bucket whose window had already closed.",
                {{"shard", shard}}, static_cast<double>(engine.late_dropped));
    out.Gauge("converge_open_windows", "Open bucket windows.",
              {{"shard", shard}}, static_cast<double>(engine.open_windows));
    out.Gauge("converge_open_trackers", "Open (series, bucket) trackers.",
              {{"shard", shard}}, static_cast<double>(engine.trackers));
    out.Gauge("converge_ticks_completed", "Ticks the shard has expired.",
              {{"shard", shard}},
              static_cast<double>(snapshot.shards[i].ticks_completed));
    out.Counter("converge_shard_cpu_seconds_total",
                "CPU time of the shard thread, updated once per tick.",
                {{"shard", shard}}, snapshot.shards[i].cpu_seconds);
  }

  // Queues.
  out.Gauge("converge_queue_depth", "Items waiting in a hand-off queue.",
            {{"queue", "fetch_tasks"}, {"shard", ""}},
            static_cast<double>(snapshot.task_queue_depth));
  for (size_t i = 0; i < snapshot.shards.size(); ++i) {
    out.Gauge("converge_queue_depth", "",
              {{"queue", "shard"}, {"shard", absl::StrCat(i)}},
              static_cast<double>(snapshot.shards[i].queue_depth));
  }
  out.Gauge("converge_queue_depth", "", {{"queue", "sink"}, {"shard", ""}},
            static_cast<double>(snapshot.sink.queue_depth));

  // Delivery.
  const SinkSnapshot& sink = snapshot.sink;
  out.Counter("converge_sink_samples_total",
              "Samples the sink thread handled, by outcome.",
              {{"outcome", "delivered"}}, static_cast<double>(sink.delivered));
  out.Counter("converge_sink_samples_total", "", {{"outcome", "rejected"}},
              static_cast<double>(sink.rejected));
  out.Counter("converge_sink_samples_total", "", {{"outcome", "undelivered"}},
              static_cast<double>(sink.undelivered));
  out.Counter("converge_sink_samples_total", "", {{"outcome", "superseded"}},
              static_cast<double>(sink.superseded));
  for (const auto& [status, count] : sink.rejected_by_http_status) {
    out.Counter("converge_sink_rejected_samples_total",
                "Samples the receiver rejected, by HTTP status (other: no "
                "HTTP status).",
                {{"status", status == 0 ? "other" : absl::StrCat(status)}},
                static_cast<double>(count));
  }
  out.Counter("converge_sink_pushes_total",
              "Push requests, retries and split halves included.", {},
              static_cast<double>(sink.pushes));
  out.Counter("converge_sink_retries_total", "Failed pushes tried again.", {},
              static_cast<double>(sink.retries));
  out.Counter("converge_sink_batches_total", "Batches closed.", {},
              static_cast<double>(sink.batches));
  out.Counter("converge_sink_retry_wait_seconds_total",
              "Time the sink waited between retries.", {},
              absl::ToDoubleSeconds(sink.retry_wait));

  // Convergence.
  out.HistogramFamily(
      "converge_first_push_age_seconds",
      "Seconds from a bucket's start to the first push of its value.",
      snapshot.first_push_age_seconds);
  out.HistogramFamily(
      "converge_correction_relative_size",
      "Relative change |new - old| / old of a value pushed again.",
      snapshot.correction_size);

  return out.Serialize();
}

}  // namespace converge

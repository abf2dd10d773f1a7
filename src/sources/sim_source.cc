// The sim source: a deterministic stand-in for Cloudflare's per-minute zone
// analytics.
//
// Every value is a pure function of (seed, zone, series slot, bucket, age), so
// the same task gives the same observations on any thread and in any run.
// Series keys are built during Fetch() from per-slot label strings prepared
// once, so a million simulated series cost memory only while being fetched.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "converge/sources.h"
#include "sources/backfill_progress.h"
#include "core/series_encoder.h"
#include "sources/tick_pacer.h"

namespace converge {
namespace {

// --- Metric families --------------------------------------------------------

// Label values ordered from the most to the least frequent, so that a slot's
// share of its family's traffic falls with its rank.
constexpr std::array<std::string_view, 25> kStatuses = {
    "200", "304", "404", "301", "302", "403", "206", "204", "500",
    "502", "503", "499", "400", "401", "429", "504", "201", "405",
    "408", "520", "521", "522", "524", "101", "410"};
constexpr std::array<std::string_view, 60> kCountries = {
    "US", "DE", "GB", "FR", "JP", "IN", "BR", "CA", "NL", "AU", "CN", "KR",
    "SG", "ES", "IT", "SE", "PL", "RU", "MX", "ID", "TR", "CH", "IE", "HK",
    "TW", "VN", "UA", "AR", "ZA", "BE", "AT", "NO", "DK", "FI", "CZ", "PT",
    "IL", "RO", "TH", "PH", "MY", "NZ", "CL", "CO", "EG", "SA", "AE", "NG",
    "PK", "HU", "GR", "KE", "BD", "PE", "SK", "BG", "LT", "HR", "SI", "LV"};
// The region of each entry of kCountries, as the Cloudflare exporters label
// country breakdowns.
constexpr std::array<std::string_view, 60> kCountryRegions = {
    "Americas", "Europe",   "Europe",   "Europe",   "Asia",     "Asia",
    "Americas", "Americas", "Europe",   "Oceania",  "Asia",     "Asia",
    "Asia",     "Europe",   "Europe",   "Europe",   "Europe",   "Europe",
    "Americas", "Asia",     "Asia",     "Europe",   "Europe",   "Asia",
    "Asia",     "Asia",     "Europe",   "Americas", "Africa",   "Europe",
    "Europe",   "Europe",   "Europe",   "Europe",   "Europe",   "Europe",
    "Asia",     "Europe",   "Asia",     "Asia",     "Asia",     "Oceania",
    "Americas", "Americas", "Africa",   "Asia",     "Asia",     "Africa",
    "Asia",     "Europe",   "Europe",   "Africa",   "Asia",     "Americas",
    "Europe",   "Europe",   "Europe",   "Europe",   "Europe",   "Europe"};
constexpr std::array<std::string_view, 16> kContentTypes = {
    "html", "json", "javascript", "css",   "png",   "jpeg",
    "webp", "svg",  "gif",        "woff2", "plain", "xml",
    "octet-stream", "avif", "mp4", "empty"};
constexpr std::array<std::string_view, 12> kBrowsers = {
    "Chrome",         "ChromeMobile", "Safari",
    "MobileSafari",   "Edge",         "Firefox",
    "SamsungBrowser", "Opera",        "ChromeMobileWebView",
    "FacebookExternalHit", "Bot",     "Other"};

// One metric family. `label` is empty for families labelled by zone only.
struct Family {
  std::string_view name;
  std::string_view label;
  std::span<const std::string_view> values;
  std::span<const std::string_view> regions;  // parallel to values, or empty
  double per_minute;  // typical final value of a mid-sized zone, top rank
};

// Names and labels follow lablabs/cloudflare-exporter (prometheus.go). The
// families with a zone label only come first, so every zone has them before
// any breakdown.
const std::array<Family, 15>& Families() {
  static const std::array<Family, 15> kFamilies = {{
      {"cloudflare_zone_requests_total", "", {}, {}, 50000},
      {"cloudflare_zone_bandwidth_total", "", {}, {}, 2e9},
      {"cloudflare_zone_requests_cached", "", {}, {}, 30000},
      {"cloudflare_zone_bandwidth_cached", "", {}, {}, 1.2e9},
      {"cloudflare_zone_requests_ssl_encrypted", "", {}, {}, 48000},
      {"cloudflare_zone_bandwidth_ssl_encrypted", "", {}, {}, 1.9e9},
      {"cloudflare_zone_threats_total", "", {}, {}, 200},
      {"cloudflare_zone_pageviews_total", "", {}, {}, 8000},
      {"cloudflare_zone_requests_status", "status", kStatuses, {}, 40000},
      {"cloudflare_zone_requests_country", "country", kCountries,
       kCountryRegions, 20000},
      {"cloudflare_zone_requests_content_type", "content_type", kContentTypes,
       {}, 20000},
      {"cloudflare_zone_bandwidth_country", "country", kCountries,
       kCountryRegions, 8e8},
      {"cloudflare_zone_bandwidth_content_type", "content_type", kContentTypes,
       {}, 8e8},
      {"cloudflare_zone_threats_country", "country", kCountries,
       kCountryRegions, 80},
      {"cloudflare_zone_requests_browser_map_page_views_count", "family",
       kBrowsers, {}, 3000},
  }};
  return kFamilies;
}

// One series of every zone: a family and, for labelled families, one value.
struct Slot {
  std::string_view name;
  std::string_view label;  // empty: zone label only
  std::string_view value;
  std::string_view region;  // empty: no region label
  double per_minute;  // the family's scale divided by the value's rank
};

// Lays out the series of a zone: zone-only families first, then one value
// of each labelled family in turn, so that a small series_per_zone still
// mixes families. Slot i is the same whatever the count requested.
std::vector<Slot> AllSlots() {
  std::vector<Slot> slots;
  size_t labelled_rounds = 0;
  for (const Family& family : Families()) {
    if (family.label.empty()) {
      slots.push_back({family.name, "", "", "", family.per_minute});
    }
    labelled_rounds = std::max(labelled_rounds, family.values.size());
  }

  for (size_t rank = 0; rank < labelled_rounds; ++rank) {
    for (const Family& family : Families()) {
      if (rank >= family.values.size()) continue;
      const std::string_view region =
          family.regions.empty() ? std::string_view() : family.regions[rank];
      slots.push_back({family.name, family.label, family.values[rank], region,
                       family.per_minute / static_cast<double>(rank + 1)});
    }
  }
  return slots;
}

size_t MaxSeriesPerZone() {
  static const size_t kMax = AllSlots().size();
  return kMax;
}

// --- Deterministic values ---------------------------------------------------

// splitmix64's finalizer: a cheap bijective mix with good avalanche.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Distinct purposes draw from unrelated streams of the same inputs.
enum class Draw : uint64_t {
  kZoneSize = 1,
  kMinuteNoise,
  kPartialShare,
  kRevision,
};

uint64_t Hash(uint64_t seed, Draw draw, uint64_t a, uint64_t b = 0,
              uint64_t c = 0, uint64_t d = 0) {
  uint64_t h = Mix(seed ^ Mix(static_cast<uint64_t>(draw)));
  for (uint64_t part : {a, b, c, d}) h = Mix(h ^ part);
  return h;
}

// Uniform in [0, 1) from the top 53 bits.
double Unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// Cloudflare's lag: the share of the final value a bucket shows at one, two
// and three whole minutes of age. From four minutes on it shows the final
// value.
struct PartialShare {
  double low;
  double high;
};
constexpr std::array<PartialShare, 3> kPartialShares = {{
    {0.03, 0.05},  // 1 minute old: about 4%
    {0.40, 0.50},  // 2 minutes old: about 45%
    {0.87, 0.93},  // 3 minutes old: about 90%
}};

// About one (series, bucket) in this many is revised after settling.
constexpr uint64_t kRevisionOdds = 1000;

// The minute arithmetic below uses whole minutes since the Unix epoch.
int64_t FloorMinute(absl::Time time) {
  const int64_t seconds = absl::ToUnixSeconds(time);  // rounds down
  return seconds >= 0 ? seconds / 60 : -((-seconds + 59) / 60);
}

absl::Time MinuteStart(int64_t minute) {
  return absl::FromUnixSeconds(minute * 60);
}

// --- The source -------------------------------------------------------------

absl::Status InvalidSim(absl::string_view field, absl::string_view rule,
                        absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid sim options: ", field, " must be ", rule, ", got ", got));
}

class SimSource final : public Source {
 public:
  explicit SimSource(const SimOptions& options)
      : options_(options),
        partitions_(static_cast<uint32_t>(
            (uint64_t{options.zones} + options.zones_per_query - 1) /
            options.zones_per_query)),
        slots_(AllSlots()),
        planner_(options.lanes, options.start, partitions_),
        pacer_(options.lanes.poll_interval) {
    slots_.resize(options.series_per_zone);
    spdlog::info(
        "sim source: {} zones x {} series, {} zone groups of up to {}, seed "
        "{}, backfill {} chunks",
        options_.zones, options_.series_per_zone, partitions_,
        options_.zones_per_query, options_.seed,
        planner_.backfill_chunks_total());
  }

  std::string_view name() const override { return "sim"; }

  std::optional<TickPlan> NextTick(std::stop_token stop) override;
  absl::Status Fetch(const FetchTask& task, ObservationBatch* out) override;
  void OnTaskDone(const FetchTask& task, const absl::Status& status) override;
  SourceStats Stats() const override {
    SourceStats stats;
    stats.backfill_chunks_total = planner_.backfill_chunks_total();
    stats.backfill_chunks_done = planner_.backfill_chunks_done();
    stats.gap_scheduled = planner_.gap_scheduled();
    return stats;
  }

 private:
  // The value series `slot` of `zone` shows for bucket `minute` at `age`.
  uint64_t ValueAt(uint32_t zone, uint32_t slot, int64_t minute,
                   absl::Duration age) const;
  uint64_t FinalValue(uint32_t zone, uint32_t slot, int64_t minute) const;

  // Minutes of `task.range` old enough to have data at `task.now`.
  std::vector<int64_t> BucketsOf(const FetchTask& task) const;

  // Constant after construction, so any fetcher thread may read them.
  const SimOptions options_;
  const uint32_t partitions_;
  std::vector<Slot> slots_;  // series_per_zone entries, never changed later

  // Scheduler thread only.
  LanePlanner planner_;
  uint64_t next_tick_ = 0;
  TickPacer pacer_;  // used only with options_.realtime
  BackfillProgress backfill_progress_{"sim"};
};

std::optional<TickPlan> SimSource::NextTick(std::stop_token stop) {
  if (stop.stop_requested()) return std::nullopt;

  // Tick k runs at start + k * poll_interval, up to start + duration.
  const absl::Time now =
      options_.start +
      options_.lanes.poll_interval * static_cast<int64_t>(next_tick_);
  if (now > options_.start + options_.duration) return std::nullopt;
  if (options_.realtime && !pacer_.WaitUntilDue(next_tick_, stop)) {
    return std::nullopt;
  }

  TickPlan plan = planner_.Plan(next_tick_, now);
  ++next_tick_;
  return plan;
}

std::vector<int64_t> SimSource::BucketsOf(const FetchTask& task) const {
  std::vector<int64_t> minutes;
  int64_t minute = FloorMinute(task.range.start);
  if (MinuteStart(minute) < task.range.start) ++minute;  // align up

  for (; MinuteStart(minute) < task.range.end; ++minute) {
    // A bucket has data once its minute has ended.
    if (task.now - MinuteStart(minute) < absl::Minutes(1)) break;
    minutes.push_back(minute);
  }
  return minutes;
}

absl::Status SimSource::Fetch(const FetchTask& task, ObservationBatch* out) {
  if (task.partition >= partitions_) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim fetch: zone group ", task.partition,
                     " does not exist (", partitions_, " groups)"));
  }
  // 64-bit arithmetic: the last group's end may pass UINT32_MAX.
  const uint64_t first_zone =
      uint64_t{task.partition} * options_.zones_per_query;
  const uint64_t end_zone = std::min<uint64_t>(
      options_.zones, first_zone + options_.zones_per_query);
  const std::vector<int64_t> minutes = BucketsOf(task);
  const size_t series =
      static_cast<size_t>(end_zone - first_zone) * slots_.size();
  out->Reserve(series * minutes.size(), series * minutes.size() * 64);

  // Encode each series key once, then emit it for every bucket.
  SeriesEncoder encoder;
  for (auto zone = static_cast<uint32_t>(first_zone); zone < end_zone;
       ++zone) {
    const std::string zone_name = absl::StrCat("zone-", zone);
    for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
      std::array<SeriesEncoder::LabelView, 3> labels;
      size_t label_count = 0;
      labels[label_count++] = {"zone", zone_name};
      if (!slots_[slot].label.empty()) {
        labels[label_count++] = {slots_[slot].label, slots_[slot].value};
      }
      if (!slots_[slot].region.empty()) {
        labels[label_count++] = {"region", slots_[slot].region};
      }
      absl::StatusOr<SeriesKeyView> key = encoder.Encode(
          slots_[slot].name,
          std::span<const SeriesEncoder::LabelView>(labels.data(),
                                                    label_count));
      if (!key.ok()) return key.status();

      for (int64_t minute : minutes) {
        out->Add(*key, minute * 60000,
                 ValueAt(zone, slot, minute, task.now - MinuteStart(minute)));
      }
    }
    encoder.Clear();
  }
  return absl::OkStatus();
}

uint64_t SimSource::FinalValue(uint32_t zone, uint32_t slot,
                               int64_t minute) const {
  // Zones differ in size (0.1x to 2x), and minutes vary by +-20% around that.
  const double zone_size =
      0.1 + 1.9 * Unit(Hash(options_.seed, Draw::kZoneSize, zone));
  const double noise =
      0.8 + 0.4 * Unit(Hash(options_.seed, Draw::kMinuteNoise, zone, slot,
                            static_cast<uint64_t>(minute)));
  // +1 keeps every series visible, even the smallest breakdowns.
  return static_cast<uint64_t>(slots_[slot].per_minute * zone_size * noise) +
         1;
}

uint64_t SimSource::ValueAt(uint32_t zone, uint32_t slot, int64_t minute,
                            absl::Duration age) const {
  const uint64_t final_value = FinalValue(zone, slot, minute);
  const auto bucket = static_cast<uint64_t>(minute);

  // Young buckets show a share of the final value, fixed per stage.
  const int64_t whole_minutes = age / absl::Minutes(1);
  if (whole_minutes >= 1 &&
      whole_minutes <= static_cast<int64_t>(kPartialShares.size())) {
    const PartialShare& share = kPartialShares[whole_minutes - 1];
    const double fraction =
        share.low + (share.high - share.low) *
                        Unit(Hash(options_.seed, Draw::kPartialShare, zone,
                                  slot, bucket, whole_minutes));
    return static_cast<uint64_t>(static_cast<double>(final_value) * fraction);
  }

  // A rare bucket is revised 6 to 8 minutes after it started, by 0.5% to 3%,
  // downwards one time in three.
  const uint64_t revision =
      Hash(options_.seed, Draw::kRevision, zone, slot, bucket);
  if (revision % kRevisionOdds != 0) return final_value;
  const absl::Duration revised_at =
      absl::Minutes(6 + static_cast<int64_t>(Mix(revision ^ 1) % 3));
  if (age < revised_at) return final_value;
  const double share = 0.005 + 0.025 * Unit(Mix(revision ^ 2));
  const uint64_t delta = std::max<uint64_t>(
      1, static_cast<uint64_t>(static_cast<double>(final_value) * share));
  const bool down = Mix(revision ^ 3) % 3 == 0 && delta < final_value;
  return down ? final_value - delta : final_value + delta;
}

void SimSource::OnTaskDone(const FetchTask& task, const absl::Status& status) {
  backfill_progress_.OnTaskDone(planner_, task, status.ok());
}

}  // namespace

absl::Status ValidateSimOptions(const SimOptions& options) {
  if (options.zones < 1) {
    return InvalidSim("zones", ">= 1", absl::StrCat(options.zones));
  }
  if (options.series_per_zone < 1 ||
      options.series_per_zone > MaxSeriesPerZone()) {
    return InvalidSim("series_per_zone",
                      absl::StrCat("between 1 and ", MaxSeriesPerZone(),
                                   " (the simulated families and label "
                                   "values of one zone)"),
                      absl::StrCat(options.series_per_zone));
  }
  if (options.zones_per_query < 1) {
    return InvalidSim("zones_per_query", ">= 1",
                      absl::StrCat(options.zones_per_query));
  }
  if (options.duration <= absl::ZeroDuration() ||
      options.duration == absl::InfiniteDuration()) {
    return InvalidSim("duration", "finite and > 0",
                      absl::FormatDuration(options.duration));
  }
  if (options.start == absl::InfiniteFuture() ||
      options.start == absl::InfinitePast()) {
    return InvalidSim("start", "a finite time",
                      absl::FormatTime(options.start));
  }
  return ValidateLaneOptions(options.lanes);
}

absl::StatusOr<std::unique_ptr<Source>> MakeSimSource(
    const SimOptions& options) {
  absl::Status status = ValidateSimOptions(options);
  if (!status.ok()) return status;
  return std::make_unique<SimSource>(options);
}

}  // namespace converge

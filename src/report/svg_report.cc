#include "report/svg_report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/absl_compat.h"

namespace converge {
namespace {

// --- Page layout, in SVG user units (pixels) --------------------------------

constexpr double kWidth = 960;
constexpr double kHeight = 860;
constexpr double kMargin = 40;
constexpr double kSettleTop = 90;      // top of the first chart's block
constexpr double kThresholdTop = 480;  // top of the second chart's block

constexpr char kFont[] = "DejaVu Sans, Helvetica, Arial, sans-serif";
constexpr char kInk[] = "#222222";
constexpr char kMuted[] = "#666666";
constexpr char kGrid[] = "#dddddd";
constexpr char kSettleColor[] = "#1f77b4";
constexpr char kStableColor[] = "#4c78a8";
constexpr char kForcedColor[] = "#f58518";
constexpr char kFlushedColor[] = "#b0b0b0";
constexpr char kMeanColor[] = "#72b7b2";
constexpr char kP90Color[] = "#2f7f7a";

// A plot area and the data range it shows.
struct Plot {
  double left;
  double top;
  double right;
  double bottom;
  double x_min = 0;
  double x_max = 1;
  double y_max = 1;

  double X(double value) const {
    return left + (value - x_min) / (x_max - x_min) * (right - left);
  }
  double Y(double value) const {
    return bottom - value / y_max * (bottom - top);
  }
};

// An axis from 0 to `max` with gridlines every `step`.
struct Axis {
  double max;
  double step;
};

// Picks a step of 1, 2 or 5 times a power of ten giving about `divisions`
// gridlines, and the smallest multiple of it that is at least `value`.
Axis NiceAxis(double value, int divisions) {
  if (!(value > 0)) return {1, 0.2};
  const double raw = value / divisions;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * power;
  for (double factor : {1.0, 2.0, 5.0}) {
    if (raw <= factor * power) {
      step = factor * power;
      break;
    }
  }
  return {std::ceil(value / step - 1e-9) * step, step};
}

// Formats an axis tick with as many decimals as `step` needs.
std::string TickLabel(double value, double step) {
  if (step >= 1) return absl::StrFormat("%.0f", value);
  if (step >= 0.1) return absl::StrFormat("%.1f", value);
  return absl::StrFormat("%.2f", value);
}

// Formats a share as a whole percentage, with one decimal where rounding
// would show 0% or 100% for a share that is neither.
std::string ShareLabel(double share) {
  const double percent = share * 100;
  if ((percent > 0 && percent < 0.5) || (percent >= 99.5 && percent < 100)) {
    return absl::StrFormat("%.1f%%", std::floor(percent * 10) / 10);
  }
  return absl::StrFormat("%.0f%%", percent);
}

std::string XmlEscape(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '"': escaped += "&quot;"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

// --- SVG elements -----------------------------------------------------------

class Svg {
 public:
  Svg() {
    absl::StrAppendFormat(
        &text_,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
        "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\">\n"
        "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
        "fill=\"#ffffff\"/>\n",
        kWidth, kHeight, kWidth, kHeight, kFont, kWidth, kHeight);
  }

  // `anchor` is start, middle or end.
  void Text(double x, double y, std::string_view content, double size,
            std::string_view anchor = "start", std::string_view color = kInk,
            bool bold = false) {
    absl::StrAppendFormat(
        &text_,
        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"%s\" "
        "fill=\"%s\"%s>%s</text>\n",
        x, y, size, ToAbsl(anchor), ToAbsl(color),
        bold ? " font-weight=\"bold\"" : "", XmlEscape(content));
  }

  // Text turned 90 degrees counter-clockwise around (x, y), for y axes.
  void VerticalText(double x, double y, std::string_view content,
                    double size) {
    absl::StrAppendFormat(
        &text_,
        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"middle\" "
        "fill=\"%s\" transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
        x, y, size, kInk, x, y, XmlEscape(content));
  }

  void Line(double x1, double y1, double x2, double y2,
            std::string_view color, double width = 1,
            std::string_view dash = "") {
    absl::StrAppendFormat(
        &text_,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
        "stroke-width=\"%.1f\"%s/>\n",
        x1, y1, x2, y2, ToAbsl(color), width,
        dash.empty() ? std::string()
                     : absl::StrCat(" stroke-dasharray=\"", ToAbsl(dash),
                                    "\""));
  }

  void Rect(double x, double y, double width, double height,
            std::string_view color) {
    absl::StrAppendFormat(
        &text_,
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
        "fill=\"%s\"/>\n",
        x, y, std::max(0.0, width), std::max(0.0, height), ToAbsl(color));
  }

  void Circle(double x, double y, double radius, std::string_view color) {
    absl::StrAppendFormat(
        &text_, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n",
        x, y, radius, ToAbsl(color));
  }

  void Polyline(const std::vector<std::pair<double, double>>& points,
                std::string_view color, double width) {
    std::string coordinates;
    for (const auto& [x, y] : points) {
      absl::StrAppendFormat(&coordinates, "%.1f,%.1f ", x, y);
    }
    absl::StrAppendFormat(
        &text_,
        "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
        "stroke-width=\"%.1f\" stroke-linejoin=\"round\"/>\n",
        coordinates, ToAbsl(color), width);
  }

  std::string Finish() {
    text_ += "</svg>\n";
    return std::move(text_);
  }

 private:
  std::string text_;
};

// Draws horizontal gridlines, labelled on the left with the value times
// `label_scale` followed by `suffix`, and the y axis line.
void DrawYGrid(Svg& svg, const Plot& plot, const Axis& axis,
               double label_scale = 1, std::string_view suffix = "") {
  const int lines = static_cast<int>(std::lround(axis.max / axis.step));
  for (int i = 0; i <= lines; ++i) {
    const double value = i * axis.step;
    const double y = plot.Y(value);
    svg.Line(plot.left, y, plot.right, y, i == 0 ? kInk : kGrid);
    svg.Text(plot.left - 8, y + 4,
             absl::StrCat(TickLabel(value * label_scale,
                                    axis.step * label_scale),
                          ToAbsl(suffix)),
             11, "end", kMuted);
  }
  svg.Line(plot.left, plot.top, plot.left, plot.bottom, kInk);
}

// A legend entry: a swatch (a line when `line`, else a square) and a label.
// Returns the x where the next entry may start.
double LegendEntry(Svg& svg, double x, double y, std::string_view color,
                   std::string_view label, bool line = false,
                   std::string_view dash = "") {
  if (line) {
    svg.Line(x, y - 4, x + 22, y - 4, color, 2.5, dash);
  } else {
    svg.Rect(x + 5, y - 10, 12, 12, color);
  }
  svg.Text(x + 28, y, label, 12);
  // An estimate of the label's width at 12 px, to place the next entry.
  return x + 28 + 6.8 * static_cast<double>(label.size()) + 20;
}

// --- Chart 1: share of buckets settled by age -------------------------------

void DrawSettleChart(Svg& svg, const ConvergenceReport& report) {
  const SettleResult& settle = report.settle;
  svg.Text(kMargin, kSettleTop + 20, kSettleChartTitle, 16, "start", kInk,
           true);
  svg.Text(kMargin, kSettleTop + 40,
           absl::StrCat("Counted: ", settle.counted,
                        " buckets seen changing value, at the age of the "
                        "observation that showed their final value."),
           12, "start", kMuted);
  svg.Text(kMargin, kSettleTop + 56,
           absl::StrCat("Left out: ", settle.unchanged,
                        " that never changed while observed, and ",
                        settle.open_at_end,
                        " still observed in the last tick, which may change "
                        "again."),
           12, "start", kMuted);

  Plot plot{90, kSettleTop + 80, kWidth - 60, kSettleTop + 305};
  // One minute past the oldest settle age, so the last step stays visible.
  const double max_age = std::max(1.0, std::ceil(settle.max_minutes)) + 1;
  plot.x_max = max_age;
  plot.y_max = 1;

  // Grid and axes.
  DrawYGrid(svg, plot, {1, 0.2}, 100, "%");
  const Axis x_axis = NiceAxis(max_age, 12);
  const double x_step = std::max(1.0, x_axis.step);
  for (double minute = 0; minute <= max_age + 1e-9; minute += x_step) {
    const double x = plot.X(minute);
    svg.Line(x, plot.bottom, x, plot.bottom + 5, kInk);
    svg.Text(x, plot.bottom + 18, TickLabel(minute, x_step), 11, "middle",
             kMuted);
  }
  svg.VerticalText(plot.left - 50, (plot.top + plot.bottom) / 2,
                   "buckets settled (% of counted)", 12);
  svg.Text((plot.left + plot.right) / 2, plot.bottom + 40,
           "bucket age when the value reached the value it kept (minutes)",
           12, "middle");

  if (settle.cdf_steps.empty()) {
    svg.Text((plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2,
             "No bucket was seen changing value, so no settle age is known.",
             14, "middle", kMuted);
    return;
  }

  // The empirical distribution as a step line.
  std::vector<std::pair<double, double>> points = {
      {plot.X(0), plot.Y(0)}};
  double share = 0;
  for (const auto& [age, cumulative] : settle.cdf_steps) {
    const double x = plot.X(std::max(0.0, age));
    points.emplace_back(x, plot.Y(share));
    points.emplace_back(x, plot.Y(cumulative));
    share = cumulative;
  }
  points.emplace_back(plot.X(max_age), plot.Y(share));
  svg.Polyline(points, kSettleColor, 2.5);

  // Whole-minute points, labelled where the shown percentage changes.
  std::string previous_label = ShareLabel(0);
  for (size_t minute = 0; minute < settle.share_by_minute.size(); ++minute) {
    const double value = settle.share_by_minute[minute];
    const double x = plot.X(static_cast<double>(minute));
    svg.Circle(x, plot.Y(value), 3.5, kSettleColor);
    std::string label = ShareLabel(value);
    if (label != previous_label) {
      svg.Text(x - 6, plot.Y(value) - 8, label, 11, "end", kInk);
      previous_label = std::move(label);
    }
  }

  // The 90th percentile age.
  // Its label goes to the left of the line when the right has no room.
  const double p90_x = plot.X(settle.p90_minutes);
  const bool label_left = p90_x > plot.right - 160;
  svg.Line(p90_x, plot.top, p90_x, plot.bottom, kMuted, 1.2, "5,4");
  svg.Text(label_left ? p90_x - 5 : p90_x + 5, plot.top + 12,
           absl::StrFormat("90%% settled by %.1f min", settle.p90_minutes),
           11, label_left ? "end" : "start", kMuted);

  // Legend, in a corner the line leaves empty: the lower right when most
  // buckets settle in the first half of the axis, else the upper left.
  const bool early = settle.median_minutes <= max_age / 2;
  const double legend_x = early ? plot.right - 330 : plot.left + 20;
  const double legend_y = early ? plot.bottom - 40 : plot.top + 40;
  LegendEntry(svg, legend_x, legend_y, kSettleColor,
              "share settled at this age or younger", true);
  LegendEntry(svg, legend_x, legend_y + 20, kMuted,
              "age by which 90% had settled", true, "5,4");
}

// --- Chart 2: pushes and first-push age by threshold ------------------------

// X position of group `index` of `count` across `plot`, at its left edge.
double GroupLeft(const Plot& plot, size_t index, size_t count) {
  return plot.left +
         (plot.right - plot.left) * static_cast<double>(index) /
             static_cast<double>(count);
}

void DrawThresholdAxis(Svg& svg, const Plot& plot,
                       const std::vector<ThresholdResult>& results) {
  const double group = (plot.right - plot.left) /
                       static_cast<double>(std::max<size_t>(1, results.size()));
  for (size_t i = 0; i < results.size(); ++i) {
    svg.Text(GroupLeft(plot, i, results.size()) + group / 2, plot.bottom + 18,
             absl::StrCat(results[i].threshold), 12, "middle");
  }
  svg.Text((plot.left + plot.right) / 2, plot.bottom + 38, "threshold", 12,
           "middle");
}

void DrawPushesPanel(Svg& svg, const Plot& area,
                     const std::vector<ThresholdResult>& results,
                     uint64_t buckets) {
  double max_pushes = 0;
  for (const ThresholdResult& result : results) {
    max_pushes = std::max(max_pushes, result.pushes_per_bucket);
  }
  const Axis axis = NiceAxis(std::max(1.0, max_pushes * 1.12), 5);
  Plot plot = area;
  plot.y_max = axis.max;

  svg.Text((plot.left + plot.right) / 2, plot.top - 12,
           "Pushes per (series, bucket), by cause", 13, "middle", kInk, true);
  DrawYGrid(svg, plot, axis);
  svg.VerticalText(plot.left - 45, (plot.top + plot.bottom) / 2,
                   "samples pushed per bucket", 12);
  DrawThresholdAxis(svg, plot, results);
  if (buckets == 0) return;

  const double group = (plot.right - plot.left) /
                       static_cast<double>(results.size());
  const double bar = std::min(48.0, group * 0.6);
  const auto per_bucket = [buckets](uint64_t samples) {
    return static_cast<double>(samples) / static_cast<double>(buckets);
  };
  for (size_t i = 0; i < results.size(); ++i) {
    const ThresholdResult& result = results[i];
    const double x = GroupLeft(plot, i, results.size()) + (group - bar) / 2;
    double base = 0;
    const std::pair<double, const char*> parts[] = {
        {per_bucket(result.stats.samples_stable), kStableColor},
        {per_bucket(result.stats.samples_forced), kForcedColor},
        {per_bucket(result.stats.samples_flushed), kFlushedColor},
    };
    for (const auto& [value, color] : parts) {
      svg.Rect(x, plot.Y(base + value), bar, plot.Y(base) - plot.Y(base + value),
               color);
      base += value;
    }
    svg.Text(x + bar / 2, plot.Y(base) - 5,
             absl::StrFormat("%.2f", result.pushes_per_bucket), 11, "middle");
  }
}

void DrawFirstPushPanel(Svg& svg, const Plot& area,
                        const std::vector<ThresholdResult>& results,
                        uint64_t buckets) {
  double max_age = 0;
  for (const ThresholdResult& result : results) {
    max_age = std::max({max_age, result.first_push_age_mean_minutes,
                        result.first_push_age_p90_minutes});
  }
  const Axis axis = NiceAxis(std::max(1.0, max_age * 1.12), 5);
  Plot plot = area;
  plot.y_max = axis.max;

  svg.Text((plot.left + plot.right) / 2, plot.top - 12,
           "Bucket age at first push (minutes)", 13, "middle", kInk, true);
  DrawYGrid(svg, plot, axis);
  svg.VerticalText(plot.left - 45, (plot.top + plot.bottom) / 2,
                   "minutes after bucket start", 12);
  DrawThresholdAxis(svg, plot, results);
  if (buckets == 0) return;

  const double group = (plot.right - plot.left) /
                       static_cast<double>(results.size());
  const double bar = std::min(24.0, group * 0.36);
  // Value labels only fit while a group is wide enough for two of them.
  const bool labels = group >= 44;
  for (size_t i = 0; i < results.size(); ++i) {
    const ThresholdResult& result = results[i];
    const double center = GroupLeft(plot, i, results.size()) + group / 2;
    const std::pair<double, const char*> bars[] = {
        {result.first_push_age_mean_minutes, kMeanColor},
        {result.first_push_age_p90_minutes, kP90Color},
    };
    for (size_t j = 0; j < 2; ++j) {
      const auto& [value, color] = bars[j];
      const double x = center - bar - 1 + static_cast<double>(j) * (bar + 2);
      svg.Rect(x, plot.Y(value), bar, plot.Y(0) - plot.Y(value), color);
      if (labels) {
        svg.Text(x + bar / 2, plot.Y(value) - 5,
                 absl::StrFormat("%.1f", value), 10, "middle");
      }
    }
  }
}

void DrawThresholdChart(Svg& svg, const ConvergenceReport& report) {
  svg.Text(kMargin, kThresholdTop + 20, kThresholdChartTitle, 16, "start",
           kInk, true);
  svg.Text(kMargin, kThresholdTop + 40,
           absl::StrCat("Each threshold runs its own engine over the same ",
                        report.observations, " observations of ",
                        report.buckets,
                        " (series, bucket) pairs, window TTL ",
                        absl::FormatDuration(report.options.window_ttl), "."),
           12, "start", kMuted);

  const double top = kThresholdTop + 85;
  const double bottom = kThresholdTop + 305;
  DrawPushesPanel(svg, {90, top, 440, bottom}, report.thresholds,
                  report.buckets);
  DrawFirstPushPanel(svg, {580, top, kWidth - 60, bottom}, report.thresholds,
                     report.buckets);

  const double legend_y = bottom + 65;
  double x = 90;
  x = LegendEntry(svg, x, legend_y, kStableColor, "stable");
  x = LegendEntry(svg, x, legend_y, kForcedColor, "forced at window TTL");
  LegendEntry(svg, x, legend_y, kFlushedColor, "flushed at end of input");
  x = 580;
  x = LegendEntry(svg, x, legend_y, kMeanColor, "mean");
  LegendEntry(svg, x, legend_y, kP90Color, "90th percentile");
}

}  // namespace

std::string RenderConvergenceSvg(const ConvergenceReport& report) {
  Svg svg;
  svg.Text(kMargin, 36, "converge convergence report", 20, "start", kInk,
           true);
  svg.Text(kMargin, 58,
           absl::StrCat(report.input, " | ", report.ticks, " ticks, ",
                        report.observations, " observations, ", report.series,
                        " series, ", report.buckets,
                        " (series, bucket) pairs"),
           12, "start", kMuted);
  DrawSettleChart(svg, report);
  DrawThresholdChart(svg, report);
  return svg.Finish();
}

}  // namespace converge

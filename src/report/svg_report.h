// Renders a ConvergenceReport as one self-contained SVG document with two
// charts: the share of buckets settled by age, and the pushes per bucket and
// age at first push of each threshold.

#ifndef CONVERGE_REPORT_SVG_REPORT_H_
#define CONVERGE_REPORT_SVG_REPORT_H_

#include <string>

#include "report/convergence.h"

namespace converge {

// Chart titles, also used by tests to find the charts.
inline constexpr char kSettleChartTitle[] =
    "Share of buckets settled by age (minutes)";
inline constexpr char kThresholdChartTitle[] =
    "Pushes per bucket and age at first push by threshold";

// Returns the SVG document (UTF-8, no external references).
std::string RenderConvergenceSvg(const ConvergenceReport& report);

}  // namespace converge

#endif  // CONVERGE_REPORT_SVG_REPORT_H_

// Text forms of a ConvergenceReport: a table for the terminal and CSV for
// other tools.

#ifndef CONVERGE_REPORT_REPORT_TABLES_H_
#define CONVERGE_REPORT_REPORT_TABLES_H_

#include <string>

#include "report/convergence.h"

namespace converge {

// Returns a plain-text summary: the input, the settle ages with the share
// settled at each whole minute, and one row per threshold.
std::string FormatReportTable(const ConvergenceReport& report);

// Returns CSV with the header `table,key,metric,value`, one number a row.
// `table` is `summary` (key empty), `settled_by_age` (key: age in whole
// minutes) or `threshold` (key: the threshold).
std::string FormatReportCsv(const ConvergenceReport& report);

}  // namespace converge

#endif  // CONVERGE_REPORT_REPORT_TABLES_H_

// The nightly report directory:
//   index.html    the machine, the flags, the latest table and one SVG plot per figure;
//   summary.json  the same verdicts for scripts (counts, and one entry per flag).
#ifndef LIKENESS_BENCHMARKS_REPORT_HTML_REPORT_H_
#define LIKENESS_BENCHMARKS_REPORT_HTML_REPORT_H_

#include <string>

#include "absl/status/status.h"
#include "benchmarks/report/analysis.h"

namespace likeness::bench {

struct ReportInputs {
  const History* history = nullptr;
  const Analysis* analysis = nullptr;
  NoiseRule rule;
  std::string history_path;  // shown on the page
  std::string notes;         // free text from the nightly driver (skipped parts, run time)
};

std::string RenderIndexHtml(const ReportInputs& inputs);
nlohmann::json RenderSummaryJson(const ReportInputs& inputs);

// Creates `dir` if needed and writes both files atomically.
absl::Status WriteReport(const std::string& dir, const ReportInputs& inputs);

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_REPORT_HTML_REPORT_H_

// One figure over time as a self-contained SVG (no plotting library: the report tool must
// build on any machine the benchmarks build on, and the picture is simple).
#ifndef LIKENESS_BENCHMARKS_REPORT_SVG_PLOT_H_
#define LIKENESS_BENCHMARKS_REPORT_SVG_PLOT_H_

#include <string>
#include <vector>

#include "benchmarks/report/history.h"
#include "benchmarks/report/regression.h"

namespace likeness::bench {

// The plot: x = the machine's runs in order (a run that did not measure the figure leaves a
// gap), y = the median with a min..max whisker per run, the baseline as a dashed line and
// baseline ± noise as a band (the region the latest point may fall in unflagged), the latest
// point red when it regressed, green when it improved.
std::string RenderSeriesSvg(const Series& series, const std::vector<Run>& runs,
                            const Comparison& comparison);

// "Nice" axis ticks (1, 2 or 5 × 10^k apart) covering [low, high]; at least two.
std::vector<double> NiceTicks(double low, double high, int target_count);

// Escapes &, <, >, " and ' for HTML and SVG text.
std::string EscapeXml(const std::string& text);

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_REPORT_SVG_PLOT_H_

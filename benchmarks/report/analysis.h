// The nightly report's verdicts: every series of the latest run compared with its history
// (regression.h), plus the benchmarks of the latest run that produced no figures.
#ifndef LIKENESS_BENCHMARKS_REPORT_ANALYSIS_H_
#define LIKENESS_BENCHMARKS_REPORT_ANALYSIS_H_

#include <string>
#include <vector>

#include "benchmarks/report/history.h"
#include "benchmarks/report/regression.h"

namespace likeness::bench {

// kFailure: a record with status "failed" (the benchmark's own result check failed, or it
// crashed); other statuses ("out_of_memory", "skipped") are results, listed as kNote.
enum class FlagKind { kRegression, kFailure, kImprovement, kMissing, kNote };

const char* FlagKindName(FlagKind kind);

struct ReportFlag {
  FlagKind kind;
  std::string what;    // "generate {…} seconds_per_image"
  std::string detail;  // "+31.2 % (4.64 -> 6.09 s; noise ±0.23 s over 5 runs)"
};

struct Analysis {
  int latest_run = -1;                  // -1: the history is empty
  std::vector<Comparison> comparisons;  // parallel to History::series
  std::vector<ReportFlag> flags;        // regressions and failures first
  int regressions = 0;
  int failures = 0;  // records of the latest run whose status is "failed"
};

// The latest run is the last one in the history.
Analysis Analyze(const History& history, const NoiseRule& rule);

// "generate {"model":"x","steps":30} seconds_per_image", for tables and flags.
std::string SeriesLabel(const Series& series);

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_REPORT_ANALYSIS_H_

#include "benchmarks/report/analysis.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace likeness::bench {

const char* FlagKindName(FlagKind kind) {
  switch (kind) {
    case FlagKind::kRegression: return "regression";
    case FlagKind::kFailure: return "failure";
    case FlagKind::kImprovement: return "improvement";
    case FlagKind::kMissing: return "missing";
    case FlagKind::kNote: return "note";
  }
  return "?";
}

std::string SeriesLabel(const Series& series) {
  return absl::StrFormat("%s %s %s", series.benchmark, series.config.dump(), series.figure);
}

Analysis Analyze(const History& history, const NoiseRule& rule) {
  Analysis analysis;
  analysis.latest_run = static_cast<int>(history.runs.size()) - 1;
  for (const Series& series : history.series) {
    const Comparison c = CompareLatest(series, analysis.latest_run, rule);
    analysis.comparisons.push_back(c);
    const std::string detail = absl::StrFormat(
        "%+.1f %% (%.4g -> %.4g %s; noise ±%.3g %s over %d previous runs)", 100 * c.change,
        c.baseline, c.latest, series.unit, c.noise, series.unit, c.previous_runs);
    switch (c.verdict) {
      case Verdict::kRegressed:
        ++analysis.regressions;
        analysis.flags.push_back({FlagKind::kRegression, SeriesLabel(series), detail});
        break;
      case Verdict::kImproved:
        analysis.flags.push_back({FlagKind::kImprovement, SeriesLabel(series), detail});
        break;
      case Verdict::kMissing:
        analysis.flags.push_back(
            {FlagKind::kMissing, SeriesLabel(series), "measured before, not in this run"});
        break;
      default:
        break;
    }
  }
  for (const StatusNote& note : history.statuses) {
    if (note.run != analysis.latest_run) continue;
    const bool failed = note.status == "failed";
    if (failed) ++analysis.failures;
    analysis.flags.push_back({failed ? FlagKind::kFailure : FlagKind::kNote,
                              absl::StrFormat("%s %s", note.benchmark, note.config.dump()),
                              absl::StrFormat("status: %s", note.status)});
  }
  std::stable_sort(analysis.flags.begin(), analysis.flags.end(),
                   [](const ReportFlag& a, const ReportFlag& b) { return a.kind < b.kind; });
  return analysis;
}

}  // namespace likeness::bench

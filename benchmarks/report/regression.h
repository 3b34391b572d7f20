// Deciding whether the latest run of a figure moved beyond the noise.
//
// The rule (README "Benchmarks and the nightly run" states it too):
//   baseline  = median of the figure's medians over the previous runs (the last kWindow of
//               them, so a deliberate change becomes the new normal after a while);
//   noise     = the largest of
//                 (a) kMadMultiplier × 1.4826 × MAD(previous medians): the spread between
//                     nights; 1.4826 × MAD estimates a standard deviation robustly, so one odd
//                     night neither hides nor causes a flag;
//                 (b) kSpreadFraction × (max − min) of the latest run's repeats: a run that
//                     was itself noisy (a busy machine) cannot claim more precision than it has;
//                 (c) kRelativeFloor × |baseline|: changes smaller than this are not worth a
//                     flag even on a perfectly quiet history;
//   flag      = regression when the latest median is worse than the baseline by more than the
//               noise (worse: higher for "lower is better", lower for "higher is better"),
//               improvement when better by more than the noise;
//   no flag   until kMinPreviousRuns previous runs exist: MAD of one or two nights says little.
#ifndef LIKENESS_BENCHMARKS_REPORT_REGRESSION_H_
#define LIKENESS_BENCHMARKS_REPORT_REGRESSION_H_

#include <string>
#include <vector>

#include "benchmarks/report/history.h"

namespace likeness::bench {

// MAD × this is the standard deviation of normally distributed data.
constexpr double kMadToSigma = 1.4826;

struct NoiseRule {
  // Three sigmas: about one false flag in 370 figure-nights for normal noise.
  double mad_multiplier = 3.0;
  // Half the min..max range of the latest run's own repeats.
  double spread_fraction = 0.5;
  // 5 %: the smallest change a nightly on shared machines is meant to catch.
  double relative_floor = 0.05;
  int min_previous_runs = 3;
  // About three weeks of nightly runs.
  int window = 20;
};

enum class Verdict {
  kNoBaseline,  // fewer than min_previous_runs previous runs
  kUnchanged,
  kRegressed,
  kImproved,
  kMissing,  // the series has no point in the latest run
};

const char* VerdictName(Verdict verdict);

struct Comparison {
  Verdict verdict = Verdict::kNoBaseline;
  double latest = 0;     // the latest run's median
  double baseline = 0;   // median of the previous medians
  double change = 0;     // (latest − baseline) / |baseline|; signed, direction-free
  double noise = 0;      // the threshold, in the figure's unit
  double mad_noise = 0;  // (a), (b), (c) of the rule above
  double spread_noise = 0;
  double floor_noise = 0;
  int previous_runs = 0;
};

double Median(std::vector<double> values);
// Median absolute deviation from the median; 0 for fewer than two values.
double MedianAbsoluteDeviation(const std::vector<double>& values);

// Compares the series' point in run `latest_run` with its points in earlier runs.
Comparison CompareLatest(const Series& series, int latest_run, const NoiseRule& rule);

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_REPORT_REGRESSION_H_

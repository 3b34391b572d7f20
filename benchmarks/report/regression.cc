#include "benchmarks/report/regression.h"

#include <algorithm>
#include <cmath>

namespace likeness::bench {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kNoBaseline: return "no baseline yet";
    case Verdict::kUnchanged: return "unchanged";
    case Verdict::kRegressed: return "REGRESSED";
    case Verdict::kImproved: return "improved";
    case Verdict::kMissing: return "missing in this run";
  }
  return "?";
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double MedianAbsoluteDeviation(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double center = Median(values);
  std::vector<double> deviations;
  deviations.reserve(values.size());
  for (double v : values) deviations.push_back(std::fabs(v - center));
  return Median(std::move(deviations));
}

Comparison CompareLatest(const Series& series, int latest_run, const NoiseRule& rule) {
  Comparison c;
  const Point* latest = nullptr;
  std::vector<double> previous;
  for (const Point& p : series.points) {
    if (p.run == latest_run) latest = &p;
    if (p.run < latest_run) previous.push_back(p.median);
  }
  if (previous.size() > static_cast<size_t>(rule.window)) {
    previous.erase(previous.begin(), previous.end() - rule.window);
  }
  c.previous_runs = static_cast<int>(previous.size());
  c.baseline = Median(previous);
  if (latest == nullptr) {
    c.verdict = Verdict::kMissing;
    return c;
  }
  c.latest = latest->median;
  if (c.baseline != 0) c.change = (c.latest - c.baseline) / std::fabs(c.baseline);
  c.mad_noise = rule.mad_multiplier * kMadToSigma * MedianAbsoluteDeviation(previous);
  c.spread_noise = rule.spread_fraction * (latest->max - latest->min);
  c.floor_noise = rule.relative_floor * std::fabs(c.baseline);
  c.noise = std::max({c.mad_noise, c.spread_noise, c.floor_noise});
  if (c.previous_runs < rule.min_previous_runs) {
    c.verdict = Verdict::kNoBaseline;
    return c;
  }
  // Positive when the figure got worse, whichever direction is better.
  const double worse_by =
      series.better == Better::kLower ? c.latest - c.baseline : c.baseline - c.latest;
  if (worse_by > c.noise) {
    c.verdict = Verdict::kRegressed;
  } else if (-worse_by > c.noise) {
    c.verdict = Verdict::kImproved;
  } else {
    c.verdict = Verdict::kUnchanged;
  }
  return c;
}

}  // namespace likeness::bench

#include "benchmarks/report/svg_plot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace likeness::bench {
namespace {

// Plot geometry in SVG user units (pixels at 100 % zoom); the margins fit the tick labels.
constexpr double kWidth = 640;
constexpr double kHeight = 220;
constexpr double kLeft = 64;
constexpr double kRight = 16;
constexpr double kTop = 12;
constexpr double kBottom = 36;
constexpr int kTargetTicks = 5;
constexpr double kPointRadius = 3.5;
// Headroom above and below the data so whiskers do not touch the frame.
constexpr double kYPadding = 0.08;

constexpr char kPointColor[] = "#1f5fa8";
constexpr char kBandColor[] = "#9ec5ee";
constexpr char kRegressedColor[] = "#c62828";
constexpr char kImprovedColor[] = "#2e7d32";

}  // namespace

std::string EscapeXml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> NiceTicks(double low, double high, int target_count) {
  if (!(high > low)) {
    // A flat series: a window of ±10 % (or ±1 around 0) so it still has a scale.
    const double half = low == 0 ? 1 : std::fabs(low) * 0.1;
    low -= half;
    high += half;
  }
  const double raw = (high - low) / std::max(1, target_count - 1);
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::floor(low / step) * step; t <= high + step * 0.5; t += step) {
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string RenderSeriesSvg(const Series& series, const std::vector<Run>& runs,
                            const Comparison& comparison) {
  double low = comparison.baseline - comparison.noise;
  double high = comparison.baseline + comparison.noise;
  if (comparison.previous_runs == 0) low = high = series.points.front().median;
  for (const Point& p : series.points) {
    low = std::min(low, p.min);
    high = std::max(high, p.max);
  }
  const double pad = (high - low) * kYPadding;
  const std::vector<double> ticks = NiceTicks(low - pad, high + pad, kTargetTicks);
  const double y0 = ticks.front();
  const double y1 = ticks.back();
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;
  const int n = std::max<int>(1, static_cast<int>(runs.size()));
  auto x_of = [&](int run) { return kLeft + plot_w * (n == 1 ? 0.5 : run / double(n - 1)); };
  auto y_of = [&](double v) { return kTop + plot_h * (1 - (v - y0) / (y1 - y0)); };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
      kWidth, kHeight, kWidth, kHeight);
  absl::StrAppend(&svg, "<title>", EscapeXml(series.figure), "</title>\n");
  // Noise band and baseline, from the latest comparison.
  if (comparison.previous_runs > 0) {
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"%s\" fill-opacity=\"0.35\"/>\n",
                          kLeft, y_of(comparison.baseline + comparison.noise), plot_w,
                          y_of(comparison.baseline - comparison.noise) -
                              y_of(comparison.baseline + comparison.noise),
                          kBandColor);
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
                          "stroke-dasharray=\"4 3\"/>\n",
                          kLeft, kLeft + plot_w, y_of(comparison.baseline),
                          y_of(comparison.baseline));
  }
  // Axes and y ticks.
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                        "stroke=\"#999\"/>\n",
                        kLeft, kTop, plot_w, plot_h);
  for (double t : ticks) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                          kLeft, kLeft + plot_w, y_of(t), y_of(t), kLeft - 4, y_of(t) + 4, t);
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"12\" y=\"%.1f\" transform=\"rotate(-90 12 %.1f)\" "
                        "text-anchor=\"middle\">%s (%s is better)</text>\n",
                        kTop + plot_h / 2, kTop + plot_h / 2, EscapeXml(series.unit),
                        BetterName(series.better));
  // x labels: the first and last run's date, and the run count between them.
  if (!runs.empty()) {
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"start\">%s</text>\n",
                          kLeft, kHeight - 18, EscapeXml(runs.front().time.substr(0, 16)));
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                          kLeft + plot_w, kHeight - 18, EscapeXml(runs.back().time.substr(0, 16)));
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#666\">"
                          "%d runs</text>\n",
                          kLeft + plot_w / 2, kHeight - 4, n);
  }
  // Median line, whiskers and points.
  std::string path;
  for (const Point& p : series.points) {
    absl::StrAppendFormat(&path, "%s%.1f,%.1f", path.empty() ? "M" : " L", x_of(p.run),
                          y_of(p.median));
  }
  absl::StrAppendFormat(&svg, "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\"/>\n",
                        path, kPointColor);
  const int latest_run = static_cast<int>(runs.size()) - 1;
  for (const Point& p : series.points) {
    std::string color = kPointColor;
    if (p.run == latest_run && comparison.verdict == Verdict::kRegressed) color = kRegressedColor;
    if (p.run == latest_run && comparison.verdict == Verdict::kImproved) color = kImprovedColor;
    const std::string& run_id = p.run < static_cast<int>(runs.size()) ? runs[p.run].id : "";
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"><title>%s: "
                          "%.4g %s (min %.4g, max %.4g, %d repeats)%s</title></circle>\n",
                          x_of(p.run), x_of(p.run), y_of(p.min), y_of(p.max), color, x_of(p.run),
                          y_of(p.median), kPointRadius, color, EscapeXml(run_id), p.median,
                          EscapeXml(series.unit), p.min, p.max, p.repeats,
                          p.injected_delay_ms > 0
                              ? absl::StrCat(", injected delay ", p.injected_delay_ms, " ms")
                              : "");
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace likeness::bench

#include "benchmarks/report/html_report.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmarks/report/svg_plot.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace likeness::bench {
namespace {

constexpr char kStyle[] =
    "body{font-family:sans-serif;margin:24px;max-width:1100px}"
    "table{border-collapse:collapse;margin:8px 0 20px}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}"
    "th{background:#f3f3f3}.regression,.failure{color:#c62828;font-weight:bold}"
    ".improvement{color:#2e7d32}.missing,.note{color:#8a6d00}code{font-size:12px}"
    "pre{background:#f7f7f7;padding:8px}";

std::string VerdictClass(Verdict verdict) {
  switch (verdict) {
    case Verdict::kRegressed: return "regression";
    case Verdict::kImproved: return "improvement";
    case Verdict::kMissing: return "missing";
    default: return "";
  }
}

std::string MachineTable(const MachineInfo& m) {
  std::string rows;
  const std::pair<const char*, std::string> fields[] = {
      {"machine id", m.id},   {"CPU", absl::StrCat(m.cpu, " (", m.cores, " logical cores)")},
      {"GPU", m.gpu.empty() ? "none" : m.gpu}, {"driver", m.driver},
      {"CUDA (driver)", m.cuda}, {"libtorch", m.libtorch},
      {"compiler", m.compiler}, {"kernel", m.kernel}};
  for (const auto& [name, value] : fields) {
    if (value.empty()) continue;
    absl::StrAppend(&rows, "<tr><th>", name, "</th><td>", EscapeXml(value), "</td></tr>\n");
  }
  return absl::StrCat("<table>\n", rows, "</table>\n");
}

}  // namespace

std::string RenderIndexHtml(const ReportInputs& in) {
  const History& h = *in.history;
  const Analysis& a = *in.analysis;
  const Run* latest = a.latest_run >= 0 ? &h.runs[a.latest_run] : nullptr;
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Likeness nightly benchmarks",
      latest ? absl::StrCat(" — ", EscapeXml(latest->id)) : "", "</title><style>", kStyle,
      "</style></head><body>\n<h1>Likeness nightly benchmarks</h1>\n");
  if (latest == nullptr) {
    return absl::StrCat(html, "<p>The history is empty.</p></body></html>\n");
  }
  absl::StrAppendFormat(
      &html,
      "<p>Run <code>%s</code> at %s, commit <code>%s</code>; %d runs in <code>%s</code>. "
      "<b>%d regression(s), %d failure(s).</b></p>\n",
      EscapeXml(latest->id), EscapeXml(latest->time), EscapeXml(latest->git), h.runs.size(),
      EscapeXml(in.history_path), a.regressions, a.failures);
  absl::StrAppend(&html, "<h2>Machine</h2>\n", MachineTable(h.latest_machine));

  absl::StrAppend(&html, "<h2>Flags</h2>\n");
  if (a.flags.empty()) absl::StrAppend(&html, "<p>None: every figure is within its noise.</p>\n");
  if (!a.flags.empty()) absl::StrAppend(&html, "<table><tr><th>kind</th><th>what</th><th>change</th></tr>\n");
  for (const ReportFlag& f : a.flags) {
    absl::StrAppend(&html, "<tr><td class=\"", FlagKindName(f.kind), "\">", FlagKindName(f.kind),
                    "</td><td>", EscapeXml(f.what), "</td><td>", EscapeXml(f.detail),
                    "</td></tr>\n");
  }
  if (!a.flags.empty()) absl::StrAppend(&html, "</table>\n");
  absl::StrAppendFormat(
      &html,
      "<p>Rule: baseline = median of the previous %d runs' medians; flagged when the latest "
      "median is worse (or better) than the baseline by more than the noise = max(%.3g × 1.4826 "
      "× MAD of the previous medians, %.3g × the latest run's max−min, %.3g × baseline); no "
      "verdict before %d previous runs.</p>\n",
      in.rule.window, in.rule.mad_multiplier, in.rule.spread_fraction, in.rule.relative_floor,
      in.rule.min_previous_runs);

  absl::StrAppend(&html,
                  "<h2>Latest</h2>\n<table><tr><th>benchmark</th><th>config</th><th>figure</th>"
                  "<th>median (min–max)</th><th>baseline</th><th>change</th><th>noise</th>"
                  "<th>verdict</th></tr>\n");
  for (size_t i = 0; i < h.series.size(); ++i) {
    const Series& s = h.series[i];
    const Comparison& c = a.comparisons[i];
    std::string latest_cell = "—";
    for (const Point& p : s.points) {
      if (p.run != a.latest_run) continue;
      latest_cell = absl::StrFormat("%.4g %s (%.4g–%.4g, %d)%s", p.median, s.unit, p.min, p.max,
                                    p.repeats,
                                    p.injected_delay_ms ? absl::StrFormat(
                                                              " [delay %d ms]", p.injected_delay_ms)
                                                        : "");
    }
    const bool has_baseline = c.previous_runs > 0;
    absl::StrAppend(
        &html, "<tr><td>", EscapeXml(s.benchmark), "</td><td><code>", EscapeXml(s.config.dump()),
        "</code></td><td>", EscapeXml(s.figure), " (", BetterName(s.better),
        " is better)</td><td>", EscapeXml(latest_cell), "</td><td>",
        has_baseline ? absl::StrFormat("%.4g", c.baseline) : "—", "</td><td>",
        has_baseline && c.verdict != Verdict::kMissing ? absl::StrFormat("%+.1f %%", 100 * c.change)
                                                       : "—",
        "</td><td>", has_baseline ? absl::StrFormat("±%.3g", c.noise) : "—",
        "</td><td class=\"", VerdictClass(c.verdict), "\">", VerdictName(c.verdict),
        "</td></tr>\n");
  }
  absl::StrAppend(&html, "</table>\n<h2>Over time</h2>\n");
  for (size_t i = 0; i < h.series.size(); ++i) {
    const Series& s = h.series[i];
    absl::StrAppend(&html, "<h3>", EscapeXml(s.benchmark), " — ", EscapeXml(s.figure),
                    "</h3>\n<p><code>", EscapeXml(s.config.dump()), "</code></p>\n",
                    RenderSeriesSvg(s, h.runs, a.comparisons[i]));
  }
  if (!in.notes.empty()) {
    absl::StrAppend(&html, "<h2>Notes from the run</h2>\n<pre>", EscapeXml(in.notes), "</pre>\n");
  }
  if (h.unreadable_lines > 0) {
    absl::StrAppendFormat(&html, "<p>%d unreadable line(s) in the history were skipped.</p>\n",
                          h.unreadable_lines);
  }
  return absl::StrCat(html, "</body></html>\n");
}

nlohmann::json RenderSummaryJson(const ReportInputs& in) {
  const History& h = *in.history;
  const Analysis& a = *in.analysis;
  nlohmann::json flags = nlohmann::json::array();
  for (const ReportFlag& f : a.flags) {
    flags.push_back({{"kind", FlagKindName(f.kind)}, {"what", f.what}, {"detail", f.detail}});
  }
  nlohmann::json figures = nlohmann::json::array();
  for (size_t i = 0; i < h.series.size(); ++i) {
    const Comparison& c = a.comparisons[i];
    figures.push_back({{"series", h.series[i].key},
                       {"verdict", VerdictName(c.verdict)},
                       {"latest", c.latest},
                       {"baseline", c.baseline},
                       {"change", c.change},
                       {"noise", c.noise},
                       {"previous_runs", c.previous_runs}});
  }
  return {{"run_id", a.latest_run >= 0 ? h.runs[a.latest_run].id : ""},
          {"runs", h.runs.size()},
          {"regressions", a.regressions},
          {"failures", a.failures},
          {"flags", flags},
          {"figures", figures}};
}

absl::Status WriteReport(const std::string& dir, const ReportInputs& inputs) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("create ", dir, ": ", error.message()));
  }
  LIKENESS_RETURN_IF_ERROR(WriteFileAtomically(dir + "/index.html", RenderIndexHtml(inputs)));
  return WriteFileAtomically(dir + "/summary.json", RenderSummaryJson(inputs).dump(2) + "\n");
}

}  // namespace likeness::bench

// The nightly report's logic on synthetic histories: records round-trip, runs and repeats
// merge, noise is estimated from the history, an unchanged figure is not flagged and a 30 %
// slowdown is, and the report files are written.
#include <filesystem>
#include <string>
#include <vector>

#include "benchmarks/bench_record.h"
#include "benchmarks/report/analysis.h"
#include "benchmarks/report/history.h"
#include "benchmarks/report/html_report.h"
#include "benchmarks/report/regression.h"
#include "benchmarks/report/svg_plot.h"
#include "common/atomic_file.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"

namespace likeness::bench {
namespace {

// A quiet nightly figure: ±2 % around 4.0 s, deterministic so the tests never flake.
constexpr double kBase = 4.0;
constexpr double kJitter[] = {0.00, 0.02, -0.01, 0.015, -0.02, 0.005, -0.005, 0.01};

BenchRecord MakeRecord(const std::string& run_id, double median, double spread = 0.01,
                       Better better = Better::kLower, const std::string& status = "ok") {
  BenchRecord record;
  record.benchmark = "generate";
  record.config = {{"model", "tiny"}, {"steps", 30}};
  record.run_id = run_id;
  record.time = "2026-11-22T00:00:00Z";
  record.status = status;
  record.machine.id = "test";
  record.machine.cpu = "test cpu";
  if (status == "ok") {
    record.figures.push_back({"seconds_per_image", "s", better, median, median * (1 - spread),
                              median * (1 + spread), 5});
  }
  return record;
}

// `runs` quiet runs, then one whose median is `latest`.
History QuietHistoryThen(int runs, double latest, double spread = 0.01,
                         Better better = Better::kLower) {
  std::vector<BenchRecord> records;
  for (int i = 0; i < runs; ++i) {
    records.push_back(MakeRecord("run" + std::to_string(i),
                                 kBase * (1 + kJitter[i % std::size(kJitter)]), 0.01, better));
  }
  records.push_back(MakeRecord("latest", latest, spread, better));
  return BuildHistory(records);
}

TEST(BenchRecord, SummarizesRepeats) {
  const Figure odd = SummarizeRepeats("t", "s", Better::kLower, {3, 1, 2});
  EXPECT_EQ(odd.median, 2);
  EXPECT_EQ(odd.min, 1);
  EXPECT_EQ(odd.max, 3);
  EXPECT_EQ(odd.repeats, 3);
  EXPECT_EQ(SummarizeRepeats("t", "s", Better::kLower, {4, 1, 2, 3}).median, 2.5);
  EXPECT_EQ(SummarizeRepeats("t", "s", Better::kLower, {}).repeats, 0);
}

TEST(BenchRecord, RoundTripsThroughJsonAndAppends) {
  BenchRecord record = MakeRecord("r1", 4.5);
  record.machine.gpu = "NVIDIA H100";
  record.extra["injected_delay_ms"] = 7;
  absl::StatusOr<BenchRecord> back = RecordFromJson(ToJson(record));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->benchmark, "generate");
  EXPECT_EQ(back->config, record.config);
  ASSERT_EQ(back->figures.size(), 1u);
  EXPECT_EQ(back->figures[0].median, 4.5);
  EXPECT_EQ(back->figures[0].better, Better::kLower);
  EXPECT_EQ(back->machine.gpu, "NVIDIA H100");

  const std::string path = testing::MakeTestTempDir("bench_record") + "/h.jsonl";
  std::filesystem::remove(path);
  ASSERT_TRUE(AppendRecord(path, record).ok());
  ASSERT_TRUE(AppendRecord(path, MakeRecord("r2", 4.6)).ok());
  // A cut line (a crash mid-write) is skipped and counted, not fatal.
  ASSERT_TRUE(AppendRecord(path, MakeRecord("r3", 4.7)).ok());
  std::string text = *ReadFileToString(path);
  ASSERT_TRUE(WriteFileAtomically(path, text + "{\"schema\": 1, \"bench").ok());
  absl::StatusOr<History> history = LoadHistory(path);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->runs.size(), 3u);
  EXPECT_EQ(history->unreadable_lines, 1);
  ASSERT_EQ(history->series.size(), 1u);
  EXPECT_EQ(history->series[0].points[0].injected_delay_ms, 7);
  EXPECT_EQ(LoadHistory(path + ".absent").status().code(), absl::StatusCode::kNotFound);
}

TEST(BenchRecord, RejectsRecordsWithoutTheirFields) {
  EXPECT_FALSE(RecordFromJson(nlohmann::json::array()).ok());
  EXPECT_FALSE(RecordFromJson({{"schema", 1}}).ok());
  EXPECT_FALSE(RecordFromJson({{"schema", 99}, {"benchmark", "x"}}).ok());
  EXPECT_FALSE(RecordFromJson({{"schema", 1}, {"benchmark", "x"},
                               {"figures", {{{"name", "t"}, {"median", "fast"}}}}})
                   .ok());
}

TEST(History, MergesRecordsOfOneRunAndKeepsConfigsApart) {
  std::vector<BenchRecord> records = {MakeRecord("a", 1.0), MakeRecord("a", 3.0),
                                      MakeRecord("a", 2.0), MakeRecord("b", 2.5)};
  records.push_back(MakeRecord("b", 9.0));
  records.back().config["steps"] = 10;  // another configuration: another series
  const History history = BuildHistory(records);
  ASSERT_EQ(history.runs.size(), 2u);
  ASSERT_EQ(history.series.size(), 2u);
  const Series& thirty = history.series[1].config["steps"] == 30 ? history.series[1] : history.series[0];
  ASSERT_EQ(thirty.points.size(), 2u);
  EXPECT_EQ(thirty.points[0].median, 2.0);  // median of the three loads of run a
  EXPECT_DOUBLE_EQ(thirty.points[0].min, 0.99);
  EXPECT_DOUBLE_EQ(thirty.points[0].max, 3.03);
  EXPECT_EQ(thirty.points[0].repeats, 15);
  // The latest run's machine is merged over its records: one without torch lacks libtorch.
  records[3].machine.libtorch = "1.13.0";
  records[4].machine.cpu = "";  // the driver's record for a crashed benchmark
  const History merged = BuildHistory(records);
  EXPECT_EQ(merged.latest_machine.libtorch, "1.13.0");
  EXPECT_EQ(merged.latest_machine.cpu, "test cpu");
  // Key order in the config does not make a new series.
  EXPECT_EQ(SeriesKey("g", {{"a", 1}, {"b", 2}}, "f"), SeriesKey("g", {{"b", 2}, {"a", 1}}, "f"));
}

TEST(Noise, MedianAndMadAreRobust) {
  EXPECT_EQ(Median({5, 1, 3}), 3);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(MedianAbsoluteDeviation({1, 2, 3, 4, 100}), 1);  // the outlier does not count
  EXPECT_EQ(MedianAbsoluteDeviation({7}), 0);
}

TEST(Regression, UnchangedFigureIsNotFlagged) {
  const History history = QuietHistoryThen(8, kBase * 1.01);
  const Comparison c = CompareLatest(history.series[0], 8, NoiseRule{});
  EXPECT_EQ(c.verdict, Verdict::kUnchanged);
  EXPECT_EQ(c.previous_runs, 8);
  EXPECT_NEAR(c.change, 0.01, 0.01);
}

TEST(Regression, ThirtyPercentSlowdownIsFlagged) {
  const History history = QuietHistoryThen(8, kBase * 1.3);
  const Analysis analysis = Analyze(history, NoiseRule{});
  ASSERT_EQ(analysis.comparisons.size(), 1u);
  EXPECT_EQ(analysis.comparisons[0].verdict, Verdict::kRegressed);
  EXPECT_EQ(analysis.regressions, 1);
  ASSERT_FALSE(analysis.flags.empty());
  EXPECT_EQ(analysis.flags[0].kind, FlagKind::kRegression);
  EXPECT_NEAR(analysis.comparisons[0].change, 0.3, 0.01);  // against the median night, 4.01 s
  EXPECT_EQ(analysis.flags[0].detail.rfind("+29.7 %", 0), 0u) << analysis.flags[0].detail;
}

TEST(Regression, DirectionFollowsTheFigure) {
  // Throughput 30 % lower is a regression; 30 % faster seconds are an improvement.
  const History slower = QuietHistoryThen(8, kBase * 0.7, 0.01, Better::kHigher);
  EXPECT_EQ(CompareLatest(slower.series[0], 8, NoiseRule{}).verdict, Verdict::kRegressed);
  const History faster = QuietHistoryThen(8, kBase * 0.7);
  EXPECT_EQ(CompareLatest(faster.series[0], 8, NoiseRule{}).verdict, Verdict::kImproved);
  EXPECT_EQ(Analyze(faster, NoiseRule{}).regressions, 0);
}

TEST(Regression, NoiseComesFromTheHistory) {
  // Nights that vary by ±20 %: MAD = 0.8, so 3 × 1.4826 × 0.8 ≈ 3.6 s of noise and even a
  // 30 % change (1.2 s) is within it. The same change on a quiet history is flagged above.
  std::vector<BenchRecord> records;
  const double noisy[] = {4.0, 4.8, 3.2, 4.0, 4.8, 3.2, 4.0};
  for (int i = 0; i < 7; ++i) records.push_back(MakeRecord("n" + std::to_string(i), noisy[i]));
  records.push_back(MakeRecord("latest", 5.2));
  const Comparison c = CompareLatest(BuildHistory(records).series[0], 7, NoiseRule{});
  EXPECT_EQ(c.verdict, Verdict::kUnchanged);
  EXPECT_NEAR(c.mad_noise, 3 * kMadToSigma * 0.8, 1e-9);
  EXPECT_EQ(c.noise, c.mad_noise);
}

TEST(Regression, TheRunsOwnSpreadAndTheFloorBoundTheNoise) {
  // Identical nights: MAD 0, so the floor (5 % of 4 s = 0.2 s) decides.
  std::vector<BenchRecord> flat;
  for (int i = 0; i < 5; ++i) flat.push_back(MakeRecord("f" + std::to_string(i), kBase));
  flat.push_back(MakeRecord("latest", kBase * 1.04));
  Comparison c = CompareLatest(BuildHistory(flat).series[0], 5, NoiseRule{});
  EXPECT_EQ(c.mad_noise, 0);
  EXPECT_NEAR(c.noise, 0.2, 1e-12);
  EXPECT_EQ(c.verdict, Verdict::kUnchanged);
  // A latest run whose own repeats spread ±40 % cannot flag a 30 % change.
  const History wide = QuietHistoryThen(8, kBase * 1.3, 0.4);
  c = CompareLatest(wide.series[0], 8, NoiseRule{});
  EXPECT_NEAR(c.spread_noise, 0.5 * (kBase * 1.3 * 0.8), 1e-9);
  EXPECT_EQ(c.verdict, Verdict::kUnchanged);
}

TEST(Regression, NoVerdictWithoutEnoughHistory) {
  const History history = QuietHistoryThen(2, kBase * 2);
  EXPECT_EQ(CompareLatest(history.series[0], 2, NoiseRule{}).verdict, Verdict::kNoBaseline);
  NoiseRule two;
  two.min_previous_runs = 2;
  EXPECT_EQ(CompareLatest(history.series[0], 2, two).verdict, Verdict::kRegressed);
}

TEST(Regression, WindowForgetsOldNights) {
  // Twenty slow nights, then a fix, then ten fast nights: the fast level is the new normal.
  std::vector<BenchRecord> records;
  for (int i = 0; i < 20; ++i) records.push_back(MakeRecord("s" + std::to_string(i), 8.0));
  for (int i = 0; i < 10; ++i) records.push_back(MakeRecord("f" + std::to_string(i), 4.0));
  records.push_back(MakeRecord("latest", 4.9));
  NoiseRule rule;
  rule.window = 10;
  EXPECT_EQ(CompareLatest(BuildHistory(records).series[0], 30, rule).verdict, Verdict::kRegressed);
}

TEST(Analysis, FailedBenchmarksAndMissingFiguresAreFlagged) {
  std::vector<BenchRecord> records;
  for (int i = 0; i < 4; ++i) records.push_back(MakeRecord("r" + std::to_string(i), kBase));
  BenchRecord failed = MakeRecord("latest", 0, 0, Better::kLower, "failed");
  failed.benchmark = "train";
  records.push_back(failed);
  BenchRecord oom = MakeRecord("latest", 0, 0, Better::kLower, "out_of_memory");
  oom.benchmark = "train_full";
  records.push_back(oom);
  const Analysis analysis = Analyze(BuildHistory(records), NoiseRule{});
  EXPECT_EQ(analysis.failures, 1);
  EXPECT_EQ(analysis.regressions, 0);
  ASSERT_EQ(analysis.flags.size(), 3u);
  EXPECT_EQ(analysis.flags[0].kind, FlagKind::kFailure);
  EXPECT_EQ(analysis.flags[1].kind, FlagKind::kMissing);  // generate did not run this time
  EXPECT_EQ(analysis.flags[2].kind, FlagKind::kNote);     // out of memory is a result
}

TEST(Svg, TicksAreNiceAndCoverTheRange) {
  const std::vector<double> ticks = NiceTicks(3.87, 5.31, 5);
  ASSERT_GE(ticks.size(), 2u);
  EXPECT_LE(ticks.front(), 3.87);
  EXPECT_GE(ticks.back(), 5.31);
  EXPECT_NEAR(ticks[1] - ticks[0], 0.5, 1e-12);
  EXPECT_GE(NiceTicks(2, 2, 5).size(), 2u);  // a flat series still gets a scale
  EXPECT_EQ(EscapeXml("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
}

TEST(Svg, PlotsEveryRunAndColoursARegression) {
  const History history = QuietHistoryThen(6, kBase * 1.3);
  const Analysis analysis = Analyze(history, NoiseRule{});
  const std::string svg = RenderSeriesSvg(history.series[0], history.runs, analysis.comparisons[0]);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  size_t circles = 0;
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1)) {
    ++circles;
  }
  EXPECT_EQ(circles, 7u);
  EXPECT_NE(svg.find("#c62828"), std::string::npos);  // the regressed point is red
}

TEST(Report, WritesIndexAndSummary) {
  const History history = QuietHistoryThen(6, kBase * 1.3);
  const Analysis analysis = Analyze(history, NoiseRule{});
  ReportInputs inputs;
  inputs.history = &history;
  inputs.analysis = &analysis;
  inputs.history_path = "history.jsonl";
  inputs.notes = "train: skipped <no GPU>";
  const std::string dir = testing::MakeTestTempDir("bench_report") + "/report";
  ASSERT_TRUE(WriteReport(dir, inputs).ok());
  const std::string html = *ReadFileToString(dir + "/index.html");
  EXPECT_NE(html.find("REGRESSED"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("skipped &lt;no GPU&gt;"), std::string::npos);
  const nlohmann::json summary = nlohmann::json::parse(*ReadFileToString(dir + "/summary.json"));
  EXPECT_EQ(summary["regressions"], 1);
  EXPECT_EQ(summary["runs"], 7);
}

}  // namespace
}  // namespace likeness::bench

// The history of one machine's benchmark records, regrouped as one series per figure:
// benchmark + config + figure name, with one point per nightly run that measured it.
#ifndef LIKENESS_BENCHMARKS_REPORT_HISTORY_H_
#define LIKENESS_BENCHMARKS_REPORT_HISTORY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmarks/bench_record.h"

namespace likeness::bench {

// One run's value of one figure. Several records of the same series in one run (a benchmark
// run once per process, three times) merge into one point: the median of their medians, the
// min of their mins, the max of their maxes and the sum of their repeats.
struct Point {
  int run = 0;  // index into History::runs
  double median = 0;
  double min = 0;
  double max = 0;
  int repeats = 0;
  int injected_delay_ms = 0;  // bench_switches.h; nonzero only in tests
};

struct Series {
  std::string key;        // benchmark | config JSON (keys sorted) | figure name
  std::string benchmark;
  nlohmann::json config;
  std::string figure;
  std::string unit;
  Better better = Better::kLower;
  std::vector<Point> points;  // in run order
};

struct Run {
  std::string id;    // LIKENESS_BENCH_RUN_ID; a record without one is a run of its own
  std::string time;  // of the run's first record
  std::string git;
};

// A benchmark whose record says it produced no figures ("failed", "out_of_memory", ...).
struct StatusNote {
  int run = 0;
  std::string benchmark;
  nlohmann::json config;
  std::string status;
};

struct History {
  std::vector<Run> runs;  // in file order, which is time order: the nightly only appends
  std::vector<Series> series;  // sorted by key
  std::vector<StatusNote> statuses;
  MachineInfo latest_machine;   // the latest run's, merged over its records
  int unreadable_lines = 0;     // not JSON, or another schema: counted, not fatal
};

History BuildHistory(const std::vector<BenchRecord>& records);

// Reads a JSON-lines history file. NOT_FOUND when it does not exist.
absl::StatusOr<History> LoadHistory(const std::string& path);

// The key that identifies a series.
std::string SeriesKey(const std::string& benchmark, const nlohmann::json& config,
                      const std::string& figure);

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_REPORT_HISTORY_H_

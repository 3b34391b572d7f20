#include "benchmarks/gbench_record.h"

#include <benchmark/benchmark.h>

#include <cstring>
#include <iostream>
#include <map>
#include <vector>

#include "benchmarks/bench_record.h"

namespace likeness::bench {
namespace {

const char* TimeUnitName(benchmark::TimeUnit unit) {
  switch (unit) {
    case benchmark::kNanosecond: return "ns";
    case benchmark::kMicrosecond: return "us";
    case benchmark::kMillisecond: return "ms";
    case benchmark::kSecond: return "s";
  }
  return "?";
}

// Google Benchmark's built-in rate counters get readable units; user counters are named by
// their unit already ("MP/s", "tokens/s").
std::string CounterUnit(const std::string& name) {
  if (name == "bytes_per_second") return "B/s";
  if (name == "items_per_second") return "items/s";
  return name;
}

class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) {
        errors_ = true;
        continue;
      }
      // Aggregates (mean, median, stddev) are recomputed from the repetitions themselves.
      if (run.run_type == Run::RT_Iteration) runs_[run.benchmark_name()].push_back(run);
    }
  }

  bool errors() const { return errors_; }
  const std::map<std::string, std::vector<Run>>& runs() const { return runs_; }

 private:
  bool errors_ = false;
  std::map<std::string, std::vector<Run>> runs_;  // by case name, in repetition order
};

}  // namespace

std::string TakeJsonFlag(int* argc, char** argv) {
  std::string path;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < *argc) {
      path = argv[++i];
    } else if (std::strncmp(argv[i], "--json=", 7) == 0) {
      path = argv[i] + 7;
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  argv[out] = nullptr;
  return path;
}

int RunAndRecord(const std::string& program, const std::string& json_path) {
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (json_path.empty()) return reporter.errors() ? 1 : 0;
  for (const auto& [name, runs] : reporter.runs()) {
    BenchRecord record = NewRecord(program);
    record.config = {{"case", name}, {"threads", runs.front().threads}};
    std::vector<double> times;
    std::map<std::string, std::vector<double>> rates;
    for (const auto& run : runs) {
      times.push_back(run.GetAdjustedRealTime());
      for (const auto& [counter, value] : run.counters) {
        if (value.flags & benchmark::Counter::kIsRate) rates[counter].push_back(value.value);
      }
    }
    record.figures.push_back(SummarizeRepeats("real_time_per_iteration",
                                              TimeUnitName(runs.front().time_unit), Better::kLower,
                                              times));
    for (const auto& [counter, values] : rates) {
      record.figures.push_back(SummarizeRepeats(counter, CounterUnit(counter), Better::kHigher, values));
    }
    const absl::Status appended = AppendRecord(json_path, record);
    if (!appended.ok()) {
      std::cerr << program << ": " << appended << "\n";
      return 1;
    }
  }
  return reporter.errors() ? 1 : 0;
}

}  // namespace likeness::bench

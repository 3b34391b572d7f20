// Google Benchmark programs (io_benchmark, and any later one) write the common record
// (bench_record.h) through this: a console reporter that also keeps every repetition, so the
// record has the median/min/max over --benchmark_repetitions.
//
//   int main(int argc, char** argv) {
//     const std::string json = likeness::bench::TakeJsonFlag(&argc, argv);
//     benchmark::Initialize(&argc, argv);
//     if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
//     return likeness::bench::RunAndRecord("io", json);
//   }
//
// One record per benchmark case: benchmark = the program's name, config {"case": "BM_X/8"},
// figures real_time_per_iteration (lower is better, in the case's time unit) and every rate
// counter (bytes_per_second, "MP/s", ...: higher is better).
#ifndef LIKENESS_BENCHMARKS_GBENCH_RECORD_H_
#define LIKENESS_BENCHMARKS_GBENCH_RECORD_H_

#include <string>

namespace likeness::bench {

// Removes `--json PATH` (or --json=PATH) from argv, which Google Benchmark would reject;
// returns PATH, or "" when absent.
std::string TakeJsonFlag(int* argc, char** argv);

// Runs the benchmarks selected on the command line with the console output as usual, then
// appends one record per case to `json_path` (unless empty). Returns the exit status: 1 when a
// case reported an error (its own result check failed: SkipWithError) or a record could not
// be written, else 0.
int RunAndRecord(const std::string& program, const std::string& json_path);

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_GBENCH_RECORD_H_

// The one record every benchmark writes, as a JSON line, so that the nightly run can keep a
// history of all of them and compare like with like (benchmarks/nightly, nightly_report).
//
// A line looks like (one line in the file; wrapped here):
//   {"schema": 1, "benchmark": "generate", "status": "ok",
//    "config": {"model": "sdxl_single_file_tiny.safetensors", "steps": 30, ...},
//    "figures": [{"name": "seconds_per_image", "unit": "s", "better": "lower",
//                 "median": 4.64, "min": 4.48, "max": 4.90, "repeats": 5}],
//    "machine": {"id": "vm", "cpu": "AMD EPYC ...", "cores": 2, "gpu": "", "driver": "",
//                "cuda": "", "libtorch": "1.13.0", "compiler": "GCC 12.2.0", "kernel": "6.1"},
//    "run_id": "20261122T103000Z", "time": "2026-11-22T10:31:02Z", "git": "dc19621",
//    "extra": {"injected_delay_ms": 0}}
//
// Rules the history relies on:
//   - `benchmark` + `config` + figure `name` identify a series; put in `config` exactly what
//     changes the figure (sizes, dtype, device, steps) and nothing that varies run to run
//     (paths to temp files, timestamps): those go to `extra`.
//   - `median`/`min`/`max` are over the timed repeats after warm-up; `repeats` says how many.
//   - `status` is "ok", or why there are no figures ("failed", "out_of_memory", "skipped").
#ifndef LIKENESS_BENCHMARKS_BENCH_RECORD_H_
#define LIKENESS_BENCHMARKS_BENCH_RECORD_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace likeness::bench {

// Bumped when a field changes meaning; readers skip lines of other schemas.
constexpr int kRecordSchema = 1;

// Environment knobs the nightly run sets for every benchmark it starts.
// Groups the records of one nightly run (benchmarks/nightly sets a UTC timestamp).
constexpr char kRunIdEnv[] = "LIKENESS_BENCH_RUN_ID";
// The commit measured (benchmarks/nightly sets `git describe`-style text).
constexpr char kGitEnv[] = "LIKENESS_BENCH_GIT";
// Names the machine in the record and the history file; the host name when unset.
constexpr char kMachineIdEnv[] = "LIKENESS_MACHINE_ID";

enum class Better { kLower, kHigher };

const char* BetterName(Better better);  // "lower" / "higher"

struct Figure {
  std::string name;  // "seconds_per_image"
  std::string unit;  // "s", "images/s", "GiB"
  Better better = Better::kLower;
  double median = 0;
  double min = 0;
  double max = 0;
  int repeats = 0;
};

// Median (mean of the middle two for an even count), min and max of the timed repeats.
// An empty `samples` gives a figure with repeats == 0, which ToJson still writes.
Figure SummarizeRepeats(std::string name, std::string unit, Better better,
                        std::vector<double> samples);

// /proc/cpuinfo's "model name" ("unknown" where absent): the CPU alone, without DetectMachine's
// nvidia-smi call.
std::string CpuModel();
// The upper middle of the sorted samples (0 for none): the human line and JSON fields that
// generate_benchmark and train_benchmark printed before the common record existed.
double UpperMedian(std::vector<double> samples);

struct MachineInfo {
  std::string id;        // LIKENESS_MACHINE_ID, else the host name
  std::string cpu;       // /proc/cpuinfo "model name"
  int cores = 0;         // online logical CPUs
  std::string gpu;       // first GPU's name from nvidia-smi; empty without one
  std::string driver;    // NVIDIA driver version; empty without a GPU
  std::string cuda;      // CUDA version the driver reports ("13.0"); empty without a GPU
  std::string libtorch;  // TORCH_VERSION; filled by benchmarks that link torch
  std::string compiler;  // the compiler that built this file, e.g. "GCC 12.2.0"
  std::string kernel;    // uname -r
};

// Everything knowable without torch. nvidia-smi is asked only when it is on PATH.
MachineInfo DetectMachine();

struct BenchRecord {
  std::string benchmark;
  nlohmann::json config = nlohmann::json::object();
  std::vector<Figure> figures;
  std::string status = "ok";
  MachineInfo machine;
  std::string run_id;
  std::string time;  // UTC, ISO 8601
  std::string git;
  nlohmann::json extra = nlohmann::json::object();
};

// A record for `benchmark` with the machine, run id, commit and time filled in; the
// injected delay (bench_switches.h), when set, is noted in `extra` so a slowed run is
// recognisable in the history.
BenchRecord NewRecord(const std::string& benchmark);

nlohmann::json ToJson(const BenchRecord& record);
// INVALID_ARGUMENT naming the missing or mistyped field.
absl::StatusOr<BenchRecord> RecordFromJson(const nlohmann::json& json);

// Appends one line to `path` (created if absent) with a single write(2) on an O_APPEND
// descriptor, so records of benchmarks run side by side never interleave.
absl::Status AppendRecord(const std::string& path, const BenchRecord& record);

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_BENCH_RECORD_H_

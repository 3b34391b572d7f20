// Training metrics as JSON lines (<output_dir>/metrics.jsonl), one object per optimizer step,
// beside the checkpoints so a sweep report can draw loss curves without the trainer:
//   {"step": 12, "loss": 0.083, "smoothed_loss": 0.091, "lr": 1e-4, "grad_norm": 0.41,
//    "images_per_second": 3.2, "peak_memory_bytes": 123456, "skipped_steps": 0, "skipped": false,
//    "cuda_peak_memory_bytes": 9876543}   <- on CUDA only
// A resumed run first drops the lines after its checkpoint's step, so the file always
// describes one uninterrupted run.
#ifndef LIKENESS_WORKER_TRAIN_METRICS_H_
#define LIKENESS_WORKER_TRAIN_METRICS_H_

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace likeness::train {

inline constexpr char kMetricsFileName[] = "metrics.jsonl";
// Weight of the previous value in the smoothed loss (an EMA over about ten steps).
inline constexpr double kLossSmoothing = 0.9;

struct StepMetrics {
  int64_t step = 0;  // 1-based: the number of optimizer steps done
  double loss = 0.0;
  double smoothed_loss = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  double images_per_second = 0.0;
  int64_t peak_memory_bytes = 0;
  // The CUDA caching allocator's peak of bytes held by tensors since the process started;
  // absent from the line on CPU (and when the linked libtorch has no CUDA).
  std::optional<int64_t> cuda_peak_memory_bytes;
  int64_t skipped_steps = 0;
  bool skipped = false;
};

// Peak resident set size of this process (getrusage), in bytes. The CUDA allocator's peak
// comes from common/torch_compat.h (GetCudaMemoryStats).
int64_t PeakHostMemoryBytes();

class MetricsWriter {
 public:
  // Opens `path` for appending after dropping lines whose step is above `keep_through_step`.
  static absl::StatusOr<MetricsWriter> Open(const std::string& path, int64_t keep_through_step);
  absl::Status Write(const StepMetrics& metrics);

 private:
  MetricsWriter(std::string path, std::ofstream out) : path_(std::move(path)), out_(std::move(out)) {}
  std::string path_;
  std::ofstream out_;
};

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_METRICS_H_

#include "worker/train/metrics.h"

#include <sys/resource.h>

#include <cmath>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "nlohmann/json.hpp"

namespace likeness::train {
namespace {

// JSON has no NaN: a skipped step's loss is written as null.
nlohmann::json Number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

int64_t PeakHostMemoryBytes() {
  struct rusage usage {};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

absl::StatusOr<MetricsWriter> MetricsWriter::Open(const std::string& path,
                                                  int64_t keep_through_step) {
  absl::StatusOr<std::string> existing = ReadFileToString(path);
  if (existing.ok()) {
    std::string kept;
    std::istringstream lines(*existing);
    for (std::string line; std::getline(lines, line);) {
      const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_object() && record.value("step", int64_t{0}) <= keep_through_step) {
        absl::StrAppend(&kept, line, "\n");
      }
    }
    if (kept != *existing) {
      absl::Status status = WriteFileAtomically(path, kept);
      if (!status.ok()) return status;
    }
  }
  std::ofstream out(path, std::ios::app);
  if (!out) return absl::InternalError(absl::StrCat("cannot open ", path, " for appending"));
  return MetricsWriter(path, std::move(out));
}

absl::Status MetricsWriter::Write(const StepMetrics& m) {
  nlohmann::json record = {
      {"step", m.step},
      {"loss", Number(m.loss)},
      {"smoothed_loss", Number(m.smoothed_loss)},
      {"lr", m.lr},
      {"grad_norm", Number(m.grad_norm)},
      {"images_per_second", Number(m.images_per_second)},
      {"peak_memory_bytes", m.peak_memory_bytes},
      {"skipped_steps", m.skipped_steps},
      {"skipped", m.skipped},
  };
  if (m.cuda_peak_memory_bytes.has_value()) {
    record["cuda_peak_memory_bytes"] = *m.cuda_peak_memory_bytes;
  }
  out_ << record.dump() << "\n";
  out_.flush();
  if (!out_) return absl::InternalError(absl::StrCat("cannot write ", path_));
  return absl::OkStatus();
}

}  // namespace likeness::train

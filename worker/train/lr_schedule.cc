#include "worker/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace likeness::train {
namespace {

// diffusers' cosine schedule with its default num_cycles: half a cosine wave, 1 -> 0.
constexpr double kCosineCycles = 0.5;
constexpr double kPi = 3.14159265358979323846;

}  // namespace

absl::StatusOr<LrScheduleKind> ParseLrScheduleKind(const std::string& name) {
  if (name == "constant") return LrScheduleKind::kConstant;
  if (name == "constant_with_warmup") return LrScheduleKind::kConstantWithWarmup;
  if (name == "linear") return LrScheduleKind::kLinear;
  if (name == "cosine") return LrScheduleKind::kCosine;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown schedule '", name, "' (constant, constant_with_warmup, linear, cosine)"));
}

const char* LrScheduleName(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kConstant: return "constant";
    case LrScheduleKind::kConstantWithWarmup: return "constant_with_warmup";
    case LrScheduleKind::kLinear: return "linear";
    case LrScheduleKind::kCosine: return "cosine";
  }
  return "?";
}

double LrFactor(const LrScheduleSettings& s, int64_t step) {
  if (s.kind == LrScheduleKind::kConstant) return 1.0;
  // transformers divides in Python floats: float(step) / float(max(1, warmup)).
  if (step < s.warmup_steps) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, s.warmup_steps));
  }
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, s.total_steps - s.warmup_steps));
  switch (s.kind) {
    case LrScheduleKind::kConstant:
    case LrScheduleKind::kConstantWithWarmup:
      return 1.0;
    case LrScheduleKind::kLinear:
      return std::max(0.0, static_cast<double>(s.total_steps - step) / decay_steps);
    case LrScheduleKind::kCosine: {
      const double progress = static_cast<double>(step - s.warmup_steps) / decay_steps;
      return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * kCosineCycles * 2.0 * progress)));
    }
  }
  return 1.0;
}

}  // namespace likeness::train

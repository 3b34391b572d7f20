// Learning-rate schedules with the semantics of diffusers' get_scheduler (optimization.py,
// itself transformers'): a LambdaLR whose factor multiplies every group's base rate. The factor
// for optimizer step k (0-based: the k-th update uses Factor(k)) is
//   constant              1
//   constant_with_warmup  k / warmup while k < warmup, then 1
//   linear                warmup ramp, then (total - k) / (total - warmup), floored at 0
//   cosine                warmup ramp, then 0.5 * (1 + cos(pi * progress)),
//                         progress = (k - warmup) / (total - warmup)   (num_cycles = 0.5)
// So with warmup the first update has rate 0, as in diffusers. The schedule is a pure function
// of k: its whole state is the step, which the checkpoint stores.
#ifndef LIKENESS_WORKER_TRAIN_LR_SCHEDULE_H_
#define LIKENESS_WORKER_TRAIN_LR_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace likeness::train {

enum class LrScheduleKind { kConstant, kConstantWithWarmup, kLinear, kCosine };

absl::StatusOr<LrScheduleKind> ParseLrScheduleKind(const std::string& name);
const char* LrScheduleName(LrScheduleKind kind);

struct LrScheduleSettings {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
};

// The multiplier of the base learning rates for optimizer step `step` (0-based).
double LrFactor(const LrScheduleSettings& schedule, int64_t step);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_LR_SCHEDULE_H_

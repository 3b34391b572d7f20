// Private to worker/sample: the concrete schedulers behind MakeScheduler, and what they share.
#ifndef LIKENESS_WORKER_SAMPLE_SCHEDULER_INTERNAL_H_
#define LIKENESS_WORKER_SAMPLE_SCHEDULER_INTERNAL_H_

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "worker/sample/scheduler.h"

namespace likeness::sample::internal {

// The checks FromJson and MakeScheduler share (ranges that would make the tables infinite).
absl::Status ValidateSchedulerConfig(const SchedulerConfig& config);

std::unique_ptr<Scheduler> NewEulerScheduler(const SchedulerConfig& config);
std::unique_ptr<Scheduler> NewEulerAncestralScheduler(const SchedulerConfig& config);
std::unique_ptr<Scheduler> NewDpmSolverScheduler(const SchedulerConfig& config);
std::unique_ptr<Scheduler> NewDdimScheduler(const SchedulerConfig& config);

// INVALID_ARGUMENT unless 1 <= steps <= num_train_timesteps.
absl::Status CheckStepCount(const SchedulerConfig& config, int64_t steps);

// The dtype a step computes in: float32 for float16/bfloat16 latents (their small sigmas would
// round away), the tensor's own otherwise.
torch::Tensor ToStepPrecision(const torch::Tensor& t);

// Programming errors (TORCH_CHECK): no SetTimesteps yet, or `index` outside [0, limit).
void CheckIndex(const Scheduler& scheduler, int64_t index, int64_t limit, const char* what);
// Same shape for a Step's tensors; `noise` may be undefined.
void CheckStepShapes(const torch::Tensor& model_output, const torch::Tensor& sample,
                     const torch::Tensor& noise);

// Schedulers that work on sigmas (Euler, Euler ancestral) in the variance-exploding form
// x = x0 + sigma * eps: the table, init_noise_sigma, input scaling and re-noising they share.
class EulerFamilyScheduler : public Scheduler {
 public:
  absl::Status SetTimesteps(int64_t steps) override;
  double init_noise_sigma() const override;
  torch::Tensor ScaleModelInput(const torch::Tensor& sample, int64_t index) const override;
  torch::Tensor AddNoise(const torch::Tensor& original, const torch::Tensor& noise,
                         int64_t index) const override;
  torch::Tensor Renoise(const torch::Tensor& sample, const torch::Tensor& noise,
                        int64_t index) const override;

 protected:
  // `karras_capable`: EulerDiscreteScheduler has use_karras_sigmas; the ancestral one (0.24)
  // has not and ignores the flag.
  EulerFamilyScheduler(const SchedulerConfig& config, bool karras_capable);

  // x0 from the model output at noise level `sigma` (epsilon or v), in float32 scalars as
  // diffusers computes it.
  torch::Tensor PredictOriginal(const torch::Tensor& model_output, const torch::Tensor& sample,
                                float sigma) const;

  const bool karras_capable_;
  std::vector<float> train_sigmas_;  // [num_train_timesteps], float32
  std::vector<float> sigma_values_;  // sigmas_ on the host: [steps + 1], the last 0
};

}  // namespace likeness::sample::internal

#endif  // LIKENESS_WORKER_SAMPLE_SCHEDULER_INTERNAL_H_

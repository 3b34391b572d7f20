// EulerAncestralDiscreteScheduler: an Euler step down to sigma_down, then fresh noise of
// sigma_up, so that sigma_down^2 + sigma_up^2 = sigma_next^2 (k-diffusion's ancestral step, eta 1).
#include <algorithm>
#include <cmath>
#include <memory>

#include "worker/sample/scheduler_internal.h"

namespace likeness::sample::internal {
namespace {

class EulerAncestralScheduler final : public EulerFamilyScheduler {
 public:
  explicit EulerAncestralScheduler(const SchedulerConfig& config)
      : EulerFamilyScheduler(config, /*karras_capable=*/false) {}

  bool NeedsStepNoise() const override { return true; }

  StepOutput Step(const torch::Tensor& model_output, int64_t index, const torch::Tensor& sample,
                  const torch::Tensor& noise) override {
    CheckIndex(*this, index, num_steps(), "Euler ancestral Step");
    CheckStepShapes(model_output, sample, noise);
    TORCH_CHECK(noise.defined(),
                "Euler ancestral Step: needs the step's noise (NeedsStepNoise()); pass a tensor "
                "shaped like the sample from the image's own generator");
    const torch::Tensor x = ToStepPrecision(sample);
    const float sigma_from = sigma_values_[index];
    const float sigma_to = sigma_values_[index + 1];
    const torch::Tensor pred_original =
        PredictOriginal(ToStepPrecision(model_output), x, sigma_from);
    // float32 scalars in diffusers' order of operations; the max() only guards rounding below 0.
    const float sigma_up =
        std::sqrt(std::max(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                               (sigma_from * sigma_from),
                           0.0f));
    const float sigma_down = std::sqrt(std::max(sigma_to * sigma_to - sigma_up * sigma_up, 0.0f));
    const torch::Tensor derivative = (x - pred_original) / sigma_from;
    const float dt = sigma_down - sigma_from;
    torch::Tensor prev_sample = x + derivative * dt;
    prev_sample = prev_sample + ToStepPrecision(noise) * sigma_up;
    return {prev_sample.to(sample.scalar_type()), pred_original.to(sample.scalar_type())};
  }
};

}  // namespace

std::unique_ptr<Scheduler> NewEulerAncestralScheduler(const SchedulerConfig& config) {
  return std::make_unique<EulerAncestralScheduler>(config);
}

}  // namespace likeness::sample::internal

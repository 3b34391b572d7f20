// EulerDiscreteScheduler (s_churn 0: the deterministic Euler method on the probability-flow ODE).
#include <memory>

#include "worker/sample/scheduler_internal.h"

namespace likeness::sample::internal {
namespace {

class EulerScheduler final : public EulerFamilyScheduler {
 public:
  explicit EulerScheduler(const SchedulerConfig& config)
      : EulerFamilyScheduler(config, /*karras_capable=*/true) {}

  StepOutput Step(const torch::Tensor& model_output, int64_t index, const torch::Tensor& sample,
                  const torch::Tensor& noise) override {
    CheckIndex(*this, index, num_steps(), "Euler Step");
    CheckStepShapes(model_output, sample, noise);
    const torch::Tensor x = ToStepPrecision(sample);
    const float sigma = sigma_values_[index];
    const torch::Tensor pred_original = PredictOriginal(ToStepPrecision(model_output), x, sigma);
    // dx/dsigma = (x - x0) / sigma, one step of it down to the next sigma.
    const torch::Tensor derivative = (x - pred_original) / sigma;
    const float dt = sigma_values_[index + 1] - sigma;
    const torch::Tensor prev_sample = x + derivative * dt;
    return {prev_sample.to(sample.scalar_type()), pred_original.to(sample.scalar_type())};
  }
};

}  // namespace

std::unique_ptr<Scheduler> NewEulerScheduler(const SchedulerConfig& config) {
  return std::make_unique<EulerScheduler>(config);
}

}  // namespace likeness::sample::internal

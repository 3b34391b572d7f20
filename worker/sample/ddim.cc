// DDIMScheduler with eta 0 (deterministic DDIM, Song et al. 2020), on alphas_cumprod directly;
// the latents are sqrt(acp_t) * x0 + sqrt(1 - acp_t) * eps.
#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/sample/schedule_math.h"
#include "worker/sample/scheduler_internal.h"

namespace likeness::sample::internal {
namespace {

class DdimScheduler final : public Scheduler {
 public:
  explicit DdimScheduler(const SchedulerConfig& config) : Scheduler(config) {
    const torch::Tensor acp = schedule_.alphas_cumprod().contiguous();
    alphas_cumprod_.assign(acp.data_ptr<float>(), acp.data_ptr<float>() + acp.numel());
    // set_alpha_to_one: the level after the last step is clean (1) or, as SDXL's config has
    // it, the first training step's.
    final_alpha_cumprod_ = config.set_alpha_to_one ? 1.0f : alphas_cumprod_.front();
  }

  absl::Status SetTimesteps(int64_t steps) override {
    LIKENESS_RETURN_IF_ERROR(CheckStepCount(config_, steps));
    const int64_t train_steps = config_.schedule.num_train_timesteps;
    std::vector<int64_t> timesteps =
        DdimTimesteps(config_.spacing, train_steps, steps, config_.steps_offset);
    for (int64_t t : timesteps) {
      if (t < 0 || t >= train_steps) {
        return absl::InvalidArgumentError(
            absl::StrCat("DDIM: ", steps, " steps with steps_offset ", config_.steps_offset,
                         " and ", TimestepSpacingName(config_.spacing), " spacing reach timestep ",
                         t, ", outside the training range [0, ", train_steps, ")"));
      }
    }
    timestep_values_ = timesteps;
    timesteps_ = torch::tensor(timesteps, torch::kLong);
    return absl::OkStatus();
  }

  double init_noise_sigma() const override { return 1.0; }

  torch::Tensor ScaleModelInput(const torch::Tensor& sample, int64_t index) const override {
    CheckIndex(*this, index, num_steps(), "ScaleModelInput");
    return sample;
  }

  StepOutput Step(const torch::Tensor& model_output, int64_t index, const torch::Tensor& sample,
                  const torch::Tensor& noise) override {
    CheckIndex(*this, index, num_steps(), "DDIM Step");
    CheckStepShapes(model_output, sample, noise);
    const torch::Tensor x = ToStepPrecision(sample);
    const torch::Tensor m = ToStepPrecision(model_output);
    const float alpha_prod = AlphaBefore(index);
    const float alpha_prod_prev = AlphaAfter(index);
    const float sqrt_alpha = std::sqrt(alpha_prod);
    const float sqrt_beta = std::sqrt(1.0f - alpha_prod);
    torch::Tensor pred_original, pred_epsilon;
    if (config_.schedule.prediction_type == PredictionType::kVPrediction) {
      pred_original = x * sqrt_alpha - m * sqrt_beta;
      pred_epsilon = m * sqrt_alpha + x * sqrt_beta;
    } else {
      pred_original = (x - m * sqrt_beta) / sqrt_alpha;
      pred_epsilon = m;
    }
    if (config_.clip_sample) {
      pred_original = pred_original.clamp(-config_.clip_sample_range, config_.clip_sample_range);
    }
    // eta 0: no variance term, the "direction pointing to x_t" takes all of 1 - acp_prev.
    const torch::Tensor prev_sample = pred_original * std::sqrt(alpha_prod_prev) +
                                      pred_epsilon * std::sqrt(1.0f - alpha_prod_prev);
    return {prev_sample.to(sample.scalar_type()), pred_original.to(sample.scalar_type())};
  }

  torch::Tensor AddNoise(const torch::Tensor& original, const torch::Tensor& noise,
                         int64_t index) const override {
    CheckIndex(*this, index, num_steps() + 1, "AddNoise");
    if (index == num_steps()) return original;
    const float alpha_prod = AlphaBefore(index);
    return original * std::sqrt(alpha_prod) + noise * std::sqrt(1.0f - alpha_prod);
  }

  torch::Tensor Renoise(const torch::Tensor& sample, const torch::Tensor& noise,
                        int64_t index) const override {
    CheckIndex(*this, index, num_steps(), "Renoise");
    const double ratio =
        static_cast<double>(AlphaBefore(index)) / AlphaAfter(index);  // a_i / a_next
    return sample * std::sqrt(ratio) + noise * std::sqrt(std::max(1.0 - ratio, 0.0));
  }

 private:
  float AlphaBefore(int64_t index) const { return alphas_cumprod_[timestep_values_[index]]; }

  // The level a Step from `index` lands on: diffusers steps back a fixed train_steps / steps
  // (with "trailing" spacing that is not always the next timestep), or to the final alpha.
  float AlphaAfter(int64_t index) const {
    const int64_t prev_timestep =
        timestep_values_[index] - config_.schedule.num_train_timesteps / num_steps();
    return prev_timestep >= 0 ? alphas_cumprod_[prev_timestep] : final_alpha_cumprod_;
  }

  std::vector<float> alphas_cumprod_;  // [num_train_timesteps]
  float final_alpha_cumprod_ = 1.0f;
  std::vector<int64_t> timestep_values_;  // timesteps_ on the host
};

}  // namespace

std::unique_ptr<Scheduler> NewDdimScheduler(const SchedulerConfig& config) {
  return std::make_unique<DdimScheduler>(config);
}

}  // namespace likeness::sample::internal

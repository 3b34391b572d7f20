// What EulerDiscreteScheduler and EulerAncestralDiscreteScheduler share: the sigma table,
// init_noise_sigma, input scaling and noising, in the variance-exploding form x0 + sigma * eps.
#include <algorithm>
#include <cmath>

#include "common/status_macros.h"
#include "worker/sample/schedule_math.h"
#include "worker/sample/scheduler_internal.h"

namespace likeness::sample::internal {

EulerFamilyScheduler::EulerFamilyScheduler(const SchedulerConfig& config, bool karras_capable)
    : Scheduler(config), karras_capable_(karras_capable), train_sigmas_(TrainSigmas(schedule_)) {}

absl::Status EulerFamilyScheduler::SetTimesteps(int64_t steps) {
  LIKENESS_RETURN_IF_ERROR(CheckStepCount(config_, steps));
  const std::vector<float> spaced = EulerTimesteps(
      config_.spacing, config_.schedule.num_train_timesteps, steps, config_.steps_offset);
  std::vector<double> timesteps(spaced.begin(), spaced.end());
  std::vector<double> sigmas(timesteps.size());
  for (size_t i = 0; i < timesteps.size(); ++i) sigmas[i] = Interp(timesteps[i], train_sigmas_);
  if (karras_capable_ && config_.use_karras_sigmas) {
    // The Karras ramp spans the spaced schedule's own ends (unless the config pins them), and
    // each sigma maps back to a fractional timestep for the UNet.
    const double sigma_min = config_.sigma_min.value_or(sigmas.back());
    const double sigma_max = config_.sigma_max.value_or(sigmas.front());
    sigmas = KarrasSigmas(sigma_min, sigma_max, steps);
    const std::vector<float> log_sigmas = LogSigmas(train_sigmas_);
    timesteps.resize(sigmas.size());
    for (size_t i = 0; i < sigmas.size(); ++i)
      timesteps[i] = SigmaToTimestep(sigmas[i], log_sigmas);
  }
  sigma_values_.clear();
  std::vector<float> timestep_values;
  for (double s : sigmas) sigma_values_.push_back(static_cast<float>(s));
  for (double t : timesteps) timestep_values.push_back(static_cast<float>(t));
  sigma_values_.push_back(0.0f);
  timesteps_ = torch::tensor(timestep_values, torch::kFloat32);
  sigmas_ = torch::tensor(sigma_values_, torch::kFloat32);
  Reset();
  return absl::OkStatus();
}

double EulerFamilyScheduler::init_noise_sigma() const {
  const std::vector<float>& table = sigma_values_.empty() ? train_sigmas_ : sigma_values_;
  const float max_sigma = *std::max_element(table.begin(), table.end());
  // "leading" starts below the top of the schedule, where diffusers scales the noise by
  // sqrt(sigma^2 + 1) rather than sigma (float32, as its tensors).
  if (config_.spacing == TimestepSpacing::kLeading) return std::sqrt(max_sigma * max_sigma + 1.0f);
  return max_sigma;
}

torch::Tensor EulerFamilyScheduler::ScaleModelInput(const torch::Tensor& sample,
                                                    int64_t index) const {
  CheckIndex(*this, index, num_steps(), "ScaleModelInput");
  const float sigma = sigma_values_[index];
  return sample / std::sqrt(sigma * sigma + 1.0f);
}

torch::Tensor EulerFamilyScheduler::PredictOriginal(const torch::Tensor& model_output,
                                                    const torch::Tensor& sample,
                                                    float sigma) const {
  if (config_.schedule.prediction_type == PredictionType::kVPrediction) {
    const float sigma_sq_plus_one = sigma * sigma + 1.0f;
    return model_output * (-sigma / std::sqrt(sigma_sq_plus_one)) + sample / sigma_sq_plus_one;
  }
  return sample - model_output * sigma;
}

torch::Tensor EulerFamilyScheduler::AddNoise(const torch::Tensor& original,
                                             const torch::Tensor& noise, int64_t index) const {
  CheckIndex(*this, index, num_steps() + 1, "AddNoise");
  if (index == num_steps()) return original;
  return original + noise * sigma_values_[index];
}

torch::Tensor EulerFamilyScheduler::Renoise(const torch::Tensor& sample, const torch::Tensor& noise,
                                            int64_t index) const {
  CheckIndex(*this, index, num_steps(), "Renoise");
  const double from = sigma_values_[index + 1];
  const double to = sigma_values_[index];
  // Variances add: going from sigma_{i+1} to sigma_i adds sigma_i^2 - sigma_{i+1}^2.
  return sample + noise * std::sqrt(std::max(to * to - from * from, 0.0));
}

}  // namespace likeness::sample::internal

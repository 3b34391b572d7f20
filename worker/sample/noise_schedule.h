// The DDPM noise schedule SDXL was trained with (diffusers' DDPMScheduler with SDXL's config:
// scaled_linear betas 0.00085..0.012 over 1000 steps), shared by the trainer (adding noise,
// v-prediction targets, min-SNR weights) and every sampler.
#ifndef LIKENESS_WORKER_SAMPLE_NOISE_SCHEDULE_H_
#define LIKENESS_WORKER_SAMPLE_NOISE_SCHEDULE_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace likeness::sample {

enum class PredictionType { kEpsilon, kVPrediction };
enum class BetaSchedule { kScaledLinear, kLinear };

// SDXL's values.
inline constexpr int64_t kSdxlTrainTimesteps = 1000;
inline constexpr double kSdxlBetaStart = 0.00085;
inline constexpr double kSdxlBetaEnd = 0.012;

struct NoiseScheduleConfig {
  int64_t num_train_timesteps = kSdxlTrainTimesteps;
  double beta_start = kSdxlBetaStart;
  double beta_end = kSdxlBetaEnd;
  BetaSchedule beta_schedule = BetaSchedule::kScaledLinear;
  PredictionType prediction_type = PredictionType::kEpsilon;
};

absl::StatusOr<PredictionType> ParsePredictionType(
    const std::string& name);  // "epsilon", "v_prediction"
std::string PredictionTypeName(PredictionType type);
absl::StatusOr<BetaSchedule> ParseBetaSchedule(
    const std::string& name);  // "scaled_linear", "linear"
std::string BetaScheduleName(BetaSchedule schedule);

class NoiseSchedule {
 public:
  explicit NoiseSchedule(const NoiseScheduleConfig& config = {});

  const NoiseScheduleConfig& config() const { return config_; }
  // float32 [num_train_timesteps] on the CPU, computed as diffusers computes them (float32
  // torch.linspace, squared for scaled_linear; float32 cumprod), so they match it bit for bit.
  const torch::Tensor& betas() const { return betas_; }
  const torch::Tensor& alphas_cumprod() const { return alphas_cumprod_; }

  // DDPM add_noise: sqrt(acp[t]) * x0 + sqrt(1 - acp[t]) * noise, t int64 [B] (broadcast over
  // the other dims), computed in x0's dtype on x0's device.
  torch::Tensor AddNoise(const torch::Tensor& x0, const torch::Tensor& noise,
                         const torch::Tensor& timesteps) const;
  // The v-prediction target: sqrt(acp[t]) * noise - sqrt(1 - acp[t]) * x0.
  torch::Tensor Velocity(const torch::Tensor& x0, const torch::Tensor& noise,
                         const torch::Tensor& timesteps) const;
  // Signal-to-noise ratio acp / (1 - acp) at int64 timesteps [B] -> float32 [B] (min-SNR-γ).
  torch::Tensor Snr(const torch::Tensor& timesteps) const;
  // The training target for `prediction_type`: noise (epsilon) or Velocity (v).
  torch::Tensor Target(const torch::Tensor& x0, const torch::Tensor& noise,
                       const torch::Tensor& timesteps) const;

 private:
  NoiseScheduleConfig config_;
  torch::Tensor betas_, alphas_cumprod_;
};

}  // namespace likeness::sample

#endif  // LIKENESS_WORKER_SAMPLE_NOISE_SCHEDULE_H_

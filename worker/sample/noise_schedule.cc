#include "worker/sample/noise_schedule.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace likeness::sample {
namespace {

constexpr char kEpsilonName[] = "epsilon";
constexpr char kVPredictionName[] = "v_prediction";
constexpr char kScaledLinearName[] = "scaled_linear";
constexpr char kLinearName[] = "linear";

// alphas_cumprod[timesteps] in `like`'s dtype and device, shaped [B, 1, ...] to broadcast over
// a tensor of `like`'s rank (diffusers' flatten-then-unsqueeze).
torch::Tensor GatherForBroadcast(const torch::Tensor& alphas_cumprod,
                                 const torch::Tensor& timesteps, const torch::Tensor& like) {
  TORCH_CHECK(!timesteps.is_floating_point(), "NoiseSchedule: timesteps must be integers, got ",
              timesteps.scalar_type());
  const torch::Tensor table = alphas_cumprod.to(like.device(), like.scalar_type());
  torch::Tensor acp = table.index_select(0, timesteps.to(like.device(), torch::kLong).flatten());
  std::vector<int64_t> shape(std::max<int64_t>(like.dim(), 1), 1);
  shape[0] = acp.size(0);
  return acp.view(shape);  // [B] -> [B, 1, ..., 1]
}

}  // namespace

absl::StatusOr<PredictionType> ParsePredictionType(const std::string& name) {
  if (name == kEpsilonName) return PredictionType::kEpsilon;
  if (name == kVPredictionName) return PredictionType::kVPrediction;
  return absl::InvalidArgumentError(absl::StrCat("unsupported prediction_type '", name, "' (want '",
                                                 kEpsilonName, "' or '", kVPredictionName, "')"));
}

std::string PredictionTypeName(PredictionType type) {
  return type == PredictionType::kVPrediction ? kVPredictionName : kEpsilonName;
}

absl::StatusOr<BetaSchedule> ParseBetaSchedule(const std::string& name) {
  if (name == kScaledLinearName) return BetaSchedule::kScaledLinear;
  if (name == kLinearName) return BetaSchedule::kLinear;
  return absl::InvalidArgumentError(absl::StrCat("unsupported beta_schedule '", name, "' (want '",
                                                 kScaledLinearName, "' or '", kLinearName, "')"));
}

std::string BetaScheduleName(BetaSchedule schedule) {
  return schedule == BetaSchedule::kLinear ? kLinearName : kScaledLinearName;
}

NoiseSchedule::NoiseSchedule(const NoiseScheduleConfig& config) : config_(config) {
  TORCH_CHECK(config.num_train_timesteps >= 1,
              "NoiseSchedule: num_train_timesteps must be >= 1, got ", config.num_train_timesteps);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  // diffusers builds these with float32 torch ops (not numpy float64); doing the same keeps
  // every table derived from them identical to its own.
  if (config.beta_schedule == BetaSchedule::kScaledLinear) {
    betas_ = torch::linspace(std::sqrt(config.beta_start), std::sqrt(config.beta_end),
                             config.num_train_timesteps, options)
                 .pow(2);
  } else {
    betas_ =
        torch::linspace(config.beta_start, config.beta_end, config.num_train_timesteps, options);
  }
  alphas_cumprod_ = torch::cumprod(1.0 - betas_, 0);
}

torch::Tensor NoiseSchedule::AddNoise(const torch::Tensor& x0, const torch::Tensor& noise,
                                      const torch::Tensor& timesteps) const {
  const torch::Tensor acp = GatherForBroadcast(alphas_cumprod_, timesteps, x0);
  return acp.sqrt() * x0 + (1 - acp).sqrt() * noise;
}

torch::Tensor NoiseSchedule::Velocity(const torch::Tensor& x0, const torch::Tensor& noise,
                                      const torch::Tensor& timesteps) const {
  const torch::Tensor acp = GatherForBroadcast(alphas_cumprod_, timesteps, x0);
  return acp.sqrt() * noise - (1 - acp).sqrt() * x0;
}

torch::Tensor NoiseSchedule::Snr(const torch::Tensor& timesteps) const {
  TORCH_CHECK(!timesteps.is_floating_point(), "NoiseSchedule::Snr: timesteps must be integers");
  const torch::Tensor acp =
      alphas_cumprod_.index_select(0, timesteps.to(torch::kCPU, torch::kLong).flatten());
  return (acp / (1 - acp)).to(timesteps.device());
}

torch::Tensor NoiseSchedule::Target(const torch::Tensor& x0, const torch::Tensor& noise,
                                    const torch::Tensor& timesteps) const {
  if (config_.prediction_type == PredictionType::kVPrediction)
    return Velocity(x0, noise, timesteps);
  return noise;
}

}  // namespace likeness::sample

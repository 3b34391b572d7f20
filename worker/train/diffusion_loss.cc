#include "worker/train/diffusion_loss.h"

namespace likeness::train {

torch::Tensor MinSnrWeights(const torch::Tensor& snr, double gamma, Prediction prediction) {
  const torch::Tensor s = snr.to(torch::kFloat32);
  if (gamma <= 0.0) return torch::ones_like(s);
  const torch::Tensor clipped = torch::clamp_max(s, gamma);  // min(snr, γ)
  return prediction == Prediction::kEpsilon ? clipped / s : clipped / (s + 1.0);
}

DiffusionLoss ComputeDiffusionLoss(const torch::Tensor& prediction, const torch::Tensor& target,
                                   const torch::Tensor& weights, int64_t num_instance,
                                   double prior_loss_weight) {
  // [B, C, H, W] -> [B]
  const torch::Tensor mse = (prediction.to(torch::kFloat32) - target.to(torch::kFloat32))
                                .square()
                                .mean(std::vector<int64_t>{1, 2, 3});
  DiffusionLoss loss;
  torch::Tensor instance = mse.slice(0, 0, num_instance);
  if (weights.defined()) {
    instance = instance * weights.slice(0, 0, num_instance).to(mse.device());
  }
  loss.instance = instance.mean();
  loss.total = loss.instance;
  if (mse.size(0) > num_instance) {
    loss.prior = mse.slice(0, num_instance).mean();
    loss.total = loss.total + prior_loss_weight * loss.prior;
  }
  return loss;
}

}  // namespace likeness::train

#include "worker/model/vae/diagonal_gaussian.h"

namespace likeness::model {

DiagonalGaussianDistribution::DiagonalGaussianDistribution(const torch::Tensor& moments) {
  TORCH_CHECK(moments.dim() >= 2 && moments.size(1) % 2 == 0,
              "DiagonalGaussianDistribution wants [B, 2*C, ...] moments, got ", moments.sizes());
  // [B, 2*C, h, w] -> 2 x [B, C, h, w]
  const std::vector<torch::Tensor> parts = moments.chunk(2, /*dim=*/1);
  mean_ = parts[0];
  logvar_ = parts[1].clamp(kMinLogVar, kMaxLogVar);
  stddev_ = torch::exp(0.5 * logvar_);
  var_ = torch::exp(logvar_);
}

torch::Tensor DiagonalGaussianDistribution::Sample(
    std::optional<torch::Generator> generator) const {
  const torch::Device device = generator.has_value() ? generator->device() : mean_.device();
  const torch::Tensor eps =
      at::randn(mean_.sizes(),
                generator.has_value() ? c10::optional<at::Generator>(*generator) : c10::nullopt,
                torch::TensorOptions().dtype(torch::kFloat32).device(device));
  return mean_ + stddev_ * eps.to(mean_.device(), mean_.scalar_type());
}

}  // namespace likeness::model

#include "worker/model/unet/embeddings.h"

#include <cmath>

namespace likeness::model::unet {

torch::Tensor TimestepSinusoid(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                               double freq_shift) {
  TORCH_CHECK(timesteps.dim() == 1, "TimestepSinusoid wants timesteps [N], got ",
              timesteps.sizes());
  const int64_t half = dim / 2;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(timesteps.device());
  // The same float32 operations in the same order as diffusers, so the result matches bit for bit.
  torch::Tensor exponent = torch::arange(0, half, f32) * (-std::log(kTimestepMaxPeriod));
  exponent = exponent / (static_cast<double>(half) - freq_shift);
  // [N, 1] * [1, half] -> [N, half]
  torch::Tensor angles =
      timesteps.unsqueeze(1).to(torch::kFloat32) * torch::exp(exponent).unsqueeze(0);
  torch::Tensor sin = torch::sin(angles), cos = torch::cos(angles);
  // [N, half] x 2 -> [N, 2 * half]
  torch::Tensor embedding =
      flip_sin_to_cos ? torch::cat({cos, sin}, -1) : torch::cat({sin, cos}, -1);
  if (dim % 2 == 1) embedding = torch::constant_pad_nd(embedding, {0, 1});
  return embedding;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim) {
  linear_1 = register_module("linear_1", Linear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", Linear(time_embed_dim, time_embed_dim));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x) {
  return linear_2(torch::silu(linear_1(x)));
}

}  // namespace likeness::model::unet

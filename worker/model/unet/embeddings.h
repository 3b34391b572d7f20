// Timestep conditioning: the sinusoidal embedding (diffusers' Timesteps / get_timestep_embedding)
// and the two-layer MLP on top of it (TimestepEmbedding: linear_1, SiLU, linear_2).
#ifndef LIKENESS_WORKER_MODEL_UNET_EMBEDDINGS_H_
#define LIKENESS_WORKER_MODEL_UNET_EMBEDDINGS_H_

#include <torch/torch.h>

#include <cstdint>

#include "worker/model/layers.h"

namespace likeness::model::unet {

// The period of the slowest sinusoid (diffusers' max_period).
inline constexpr double kTimestepMaxPeriod = 10000.0;

// timesteps [N] (any numeric dtype) -> float32 [N, dim]. Frequencies
// exp(-ln(max_period) * i / (dim/2 - freq_shift)), i < dim/2; halves [sin, cos], or [cos, sin]
// when flip_sin_to_cos; an odd dim gets one zero column at the end. Always float32, whatever the
// model's dtype: callers cast the result (large timesteps lose precision in half types).
torch::Tensor TimestepSinusoid(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                               double freq_shift);

// diffusers' TimestepEmbedding with act_fn "silu" and no condition projection or post-activation.
class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim);
  // [B, in] -> [B, time_embed_dim]
  torch::Tensor forward(const torch::Tensor& x);

  Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace likeness::model::unet

#endif  // LIKENESS_WORKER_MODEL_UNET_EMBEDDINGS_H_

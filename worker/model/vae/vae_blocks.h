// The building blocks of diffusers' AutoencoderKL encoder and decoder, registered under
// diffusers' state-dict names (STYLE.md §1):
//   VaeResnetBlock     ResnetBlock2D without a time embedding: norm1, conv1, norm2, conv2,
//                      conv_shortcut (only when the channel count changes)
//   VaeDownsample      Downsample2D: zero pad (left 0, right 1, top 0, bottom 1), 3x3 stride-2 conv
//   VaeUpsample        Upsample2D: nearest 2x, 3x3 conv
//   VaeAttention       the mid block's Attention: group_norm, to_q, to_k, to_v, to_out.0
//   VaeMidBlock        UNetMidBlock2D: resnets.0, then (attentions.i, resnets.i+1) pairs
//   DownEncoderBlock2D resnets.*, downsamplers.0 (all but the last level)
//   UpDecoderBlock2D   resnets.*, upsamplers.0 (all but the last level)
// Parameters are uninitialised (layers.h). The UNet's ResnetBlock2D is a separate class on
// purpose for now: it carries a time embedding the VAE's blocks never have.
#ifndef LIKENESS_WORKER_MODEL_VAE_VAE_BLOCKS_H_
#define LIKENESS_WORKER_MODEL_VAE_VAE_BLOCKS_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "worker/model/layers.h"

namespace likeness::model {

// diffusers builds every GroupNorm of the VAE (resnets, mid attention, conv_norm_out) with this
// eps.
inline constexpr double kVaeNormEps = 1e-6;

class VaeResnetBlockImpl : public torch::nn::Module {
 public:
  VaeResnetBlockImpl(int64_t in_channels, int64_t out_channels, int64_t norm_groups);
  // [B, Cin, H, W] -> [B, Cout, H, W]
  torch::Tensor forward(const torch::Tensor& x);

  GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2d conv1{nullptr}, conv2{nullptr};
  Conv2d conv_shortcut{nullptr};  // null when in_channels == out_channels
};
TORCH_MODULE(VaeResnetBlock);

class VaeDownsampleImpl : public torch::nn::Module {
 public:
  explicit VaeDownsampleImpl(int64_t channels);
  // [B, C, H, W] -> [B, C, floor(H/2), floor(W/2)]
  torch::Tensor forward(const torch::Tensor& x);

  Conv2d conv{nullptr};
};
TORCH_MODULE(VaeDownsample);

class VaeUpsampleImpl : public torch::nn::Module {
 public:
  explicit VaeUpsampleImpl(int64_t channels);
  // [B, C, H, W] -> [B, C, 2H, 2W]
  torch::Tensor forward(const torch::Tensor& x);

  Conv2d conv{nullptr};
};
TORCH_MODULE(VaeUpsample);

// Single-head (head_dim == channels in every diffusers VAE) spatial self-attention with a
// residual connection, through model::Attention.
class VaeAttentionImpl : public torch::nn::Module {
 public:
  VaeAttentionImpl(int64_t channels, int64_t head_dim, int64_t norm_groups);
  // [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x);

  GroupNorm group_norm{nullptr};
  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;  // to_out.0: Linear (diffusers' to_out.1 is a Dropout)
  int64_t heads, head_dim;

 private:
  Linear out_proj_{nullptr};  // == to_out[0]
};
TORCH_MODULE(VaeAttention);

class VaeMidBlockImpl : public torch::nn::Module {
 public:
  VaeMidBlockImpl(int64_t channels, int64_t norm_groups, bool add_attention);
  // [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList attentions, resnets;

 private:
  std::vector<VaeAttention> attention_blocks_;  // empty without attention
  std::vector<VaeResnetBlock> resnet_blocks_;
};
TORCH_MODULE(VaeMidBlock);

class DownEncoderBlock2DImpl : public torch::nn::Module {
 public:
  DownEncoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                         int64_t norm_groups, bool add_downsample);
  // [B, Cin, H, W] -> [B, Cout, H/2, W/2] (H, W without the downsampler)
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList resnets, downsamplers;

 private:
  std::vector<VaeResnetBlock> resnet_blocks_;
  VaeDownsample downsample_{nullptr};
};
TORCH_MODULE(DownEncoderBlock2D);

class UpDecoderBlock2DImpl : public torch::nn::Module {
 public:
  UpDecoderBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                       int64_t norm_groups, bool add_upsample);
  // [B, Cin, H, W] -> [B, Cout, 2H, 2W] (H, W without the upsampler)
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList resnets, upsamplers;

 private:
  std::vector<VaeResnetBlock> resnet_blocks_;
  VaeUpsample upsample_{nullptr};
};
TORCH_MODULE(UpDecoderBlock2D);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VAE_VAE_BLOCKS_H_

// diffusers' VAE Encoder and Decoder (diffusers/models/vae.py), under their state-dict names.
//
// Encoder: conv_in -> down_blocks.i (DownEncoderBlock2D; all but the last halve H and W)
//          -> mid_block -> conv_norm_out -> SiLU -> conv_out (2 * latent_channels: mean, logvar)
// Decoder: conv_in -> mid_block -> up_blocks.i (UpDecoderBlock2D, layers_per_block + 1 resnets;
//          channels in reversed block_out_channels order; all but the last double H and W)
//          -> conv_norm_out -> SiLU -> conv_out
#ifndef LIKENESS_WORKER_MODEL_VAE_VAE_CODERS_H_
#define LIKENESS_WORKER_MODEL_VAE_VAE_CODERS_H_

#include <torch/torch.h>

#include <vector>

#include "worker/model/layers.h"
#include "worker/model/vae/vae_blocks.h"
#include "worker/model/vae/vae_config.h"

namespace likeness::model {

class VaeEncoderImpl : public torch::nn::Module {
 public:
  // `config` must be valid (VaeConfig::Validate).
  explicit VaeEncoderImpl(const VaeConfig& config);
  // [B, in_channels, H, W] -> [B, 2*latent_channels, H/f, W/f], f = config.DownsampleFactor()
  torch::Tensor forward(const torch::Tensor& image);

  Conv2d conv_in{nullptr};
  torch::nn::ModuleList down_blocks;
  VaeMidBlock mid_block{nullptr};
  GroupNorm conv_norm_out{nullptr};
  Conv2d conv_out{nullptr};

 private:
  std::vector<DownEncoderBlock2D> blocks_;
};
TORCH_MODULE(VaeEncoder);

class VaeDecoderImpl : public torch::nn::Module {
 public:
  // `config` must be valid (VaeConfig::Validate).
  explicit VaeDecoderImpl(const VaeConfig& config);
  // [B, latent_channels, h, w] -> [B, out_channels, h*f, w*f], f = config.DownsampleFactor()
  torch::Tensor forward(const torch::Tensor& latent);

  Conv2d conv_in{nullptr};
  VaeMidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks;
  GroupNorm conv_norm_out{nullptr};
  Conv2d conv_out{nullptr};

 private:
  std::vector<UpDecoderBlock2D> blocks_;
};
TORCH_MODULE(VaeDecoder);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VAE_VAE_CODERS_H_

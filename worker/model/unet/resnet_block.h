// The UNet's convolutional pieces, as diffusers' resnet.py defines them for UNet2DConditionModel:
// ResnetBlock2D (with time embedding), Downsample2D (strided conv) and Upsample2D (nearest x2 +
// conv). The VAE has its own, simpler versions; these live in namespace unet.
#ifndef LIKENESS_WORKER_MODEL_UNET_RESNET_BLOCK_H_
#define LIKENESS_WORKER_MODEL_UNET_RESNET_BLOCK_H_

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "worker/model/layers.h"
#include "worker/model/unet/unet_config.h"

namespace likeness::model::unet {

struct ResnetOptions {
  int64_t temb_channels = 0;
  int64_t groups = 32;
  double eps = 1e-5;
  double output_scale_factor = 1.0;
  ResnetTimeScaleShift time_scale_shift = ResnetTimeScaleShift::kDefault;
};

// Pre-norm residual block: norm1, SiLU, conv1, + time_emb_proj(SiLU(temb)), norm2, SiLU, conv2,
// plus the input (through a 1x1 conv_shortcut when the channel count changes), /
// output_scale_factor.
class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, const ResnetOptions& options);
  // x [B, Cin, H, W], temb [B, temb_channels] -> [B, Cout, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb);

  GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  Linear time_emb_proj{nullptr};
  // Recompute this block's activations in backward instead of keeping them
  // (activation_checkpoint.h).
  bool gradient_checkpointing = false;

 private:
  torch::Tensor Compute(const torch::Tensor& x, const torch::Tensor& temb);
  ResnetOptions options_;
};
TORCH_MODULE(ResnetBlock2D);

// 3x3 conv with stride 2 (diffusers' Downsample2D, use_conv=True, registered as `conv`). With
// padding 0 the input is padded on the right and bottom by one, as diffusers does.
class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int64_t channels, int64_t padding);
  // [B, C, H, W] -> [B, C, ceil(H/2), ceil(W/2)]
  torch::Tensor forward(const torch::Tensor& x);

  Conv2d conv{nullptr};

 private:
  int64_t padding_;
};
TORCH_MODULE(Downsample2D);

// Nearest-neighbour upsampling (x2, or to `output_size`) followed by a 3x3 conv. bfloat16 is
// interpolated in float32, as diffusers does.
class Upsample2DImpl : public torch::nn::Module {
 public:
  explicit Upsample2DImpl(int64_t channels);
  // [B, C, H, W] -> [B, C, 2H, 2W] (or output_size)
  torch::Tensor forward(const torch::Tensor& x,
                        const std::optional<std::vector<int64_t>>& output_size = std::nullopt);

  Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace likeness::model::unet

#endif  // LIKENESS_WORKER_MODEL_UNET_RESNET_BLOCK_H_

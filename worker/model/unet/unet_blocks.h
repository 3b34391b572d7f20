// The UNet's levels, as diffusers' unet_2d_blocks.py defines them: DownBlock2D,
// CrossAttnDownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D and CrossAttnUpBlock2D. Children are
// registered under diffusers' names (resnets.N, attentions.N, downsamplers.0, upsamplers.0).
//
// Skip connections: every down block appends the output of each layer, then of its downsampler,
// to `skips`; every up block takes one skip from the back of `skips` per resnet (concatenated on
// channels before the resnet) and upsamples to the spatial size of the skip that is then at the
// back, which is 2x except where an odd size was rounded up on the way down.
#ifndef LIKENESS_WORKER_MODEL_UNET_UNET_BLOCKS_H_
#define LIKENESS_WORKER_MODEL_UNET_UNET_BLOCKS_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "worker/model/unet/resnet_block.h"
#include "worker/model/unet/transformer.h"

namespace likeness::model::unet {

// What the levels of one UNet share.
struct BlockOptions {
  ResnetOptions resnet;
  Transformer2DOptions attention;  // num_layers is per layer, from `transformer_layers`
  int64_t downsample_padding = 1;
};

class DownBlockBase : public torch::nn::Module {
 public:
  // x [B, Cin, H, W] -> [B, Cout, H', W']; appends the skips (header comment).
  virtual torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& temb,
                                const torch::Tensor& context,
                                std::vector<torch::Tensor>* skips) = 0;
};

class UpBlockBase : public torch::nn::Module {
 public:
  // x [B, Cprev, H, W] -> [B, Cout, H', W']; takes its skips from the back of `skips`.
  virtual torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& temb,
                                const torch::Tensor& context,
                                std::vector<torch::Tensor>* skips) = 0;
};

// `num_layers` resnets, then a stride-2 downsampler unless it is the last level.
class DownBlock2DImpl : public DownBlockBase {
 public:
  DownBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                  bool add_downsample, const BlockOptions& options);
  torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& temb,
                        const torch::Tensor& context, std::vector<torch::Tensor>* skips) override;

  torch::nn::ModuleList resnets{nullptr}, downsamplers{nullptr};
};

// As DownBlock2D with a Transformer2DModel after each resnet.
class CrossAttnDownBlock2DImpl : public DownBlockBase {
 public:
  // transformer_layers: transformer blocks per layer (num_layers entries).
  CrossAttnDownBlock2DImpl(int64_t in_channels, int64_t out_channels,
                           const std::vector<int64_t>& transformer_layers, bool add_downsample,
                           const BlockOptions& options);
  torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& temb,
                        const torch::Tensor& context, std::vector<torch::Tensor>* skips) override;

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};
};

// resnets.0, then (attentions.i, resnets.i+1) for one attention layer.
class UNetMidBlock2DCrossAttnImpl : public torch::nn::Module {
 public:
  UNetMidBlock2DCrossAttnImpl(int64_t channels, int64_t transformer_layers,
                              const BlockOptions& options);
  // [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb,
                        const torch::Tensor& context);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(UNetMidBlock2DCrossAttn);

// `num_layers` resnets over cat(x, skip), then nearest x2 + conv unless it is the last level.
// Resnet i takes prev_output_channels (i = 0) or out_channels, plus in_channels for its skip
// when it is the last (the skip from the level below), else out_channels.
class UpBlock2DImpl : public UpBlockBase {
 public:
  UpBlock2DImpl(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels,
                int64_t num_layers, bool add_upsample, const BlockOptions& options);
  torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& temb,
                        const torch::Tensor& context, std::vector<torch::Tensor>* skips) override;

  torch::nn::ModuleList resnets{nullptr}, upsamplers{nullptr};
};

// As UpBlock2D with a Transformer2DModel after each resnet.
class CrossAttnUpBlock2DImpl : public UpBlockBase {
 public:
  CrossAttnUpBlock2DImpl(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels,
                         const std::vector<int64_t>& transformer_layers, bool add_upsample,
                         const BlockOptions& options);
  torch::Tensor Forward(const torch::Tensor& x, const torch::Tensor& temb,
                        const torch::Tensor& context, std::vector<torch::Tensor>* skips) override;

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};
};

}  // namespace likeness::model::unet

#endif  // LIKENESS_WORKER_MODEL_UNET_UNET_BLOCKS_H_

#include "worker/model/unet/unet_blocks.h"

#include <optional>

namespace likeness::model::unet {
namespace {

torch::Tensor RunResnet(const torch::nn::ModuleListImpl& list, size_t i, const torch::Tensor& x,
                        const torch::Tensor& temb) {
  return list.ptr(i)->as<ResnetBlock2DImpl>()->forward(x, temb);
}

torch::Tensor RunAttention(const torch::nn::ModuleListImpl& list, size_t i, const torch::Tensor& x,
                           const torch::Tensor& context) {
  return list.ptr(i)->as<Transformer2DModelImpl>()->forward(x, context);
}

Transformer2DModel MakeTransformer(int64_t channels, int64_t num_layers,
                                   const BlockOptions& options) {
  Transformer2DOptions attention = options.attention;
  attention.num_layers = num_layers;
  return Transformer2DModel(channels, attention);
}

// Pops the last skip: [B, Cskip, H, W]; then cat(x, skip) on channels -> [B, C + Cskip, H, W].
torch::Tensor ConcatLastSkip(const torch::Tensor& x, std::vector<torch::Tensor>* skips) {
  TORCH_CHECK(!skips->empty(), "UNet up block: no skip connection left");
  torch::Tensor skip = std::move(skips->back());
  skips->pop_back();
  return torch::cat({x, skip}, 1);
}

// The upsampler's target: the spatial size of the next skip (header comment of unet_blocks.h).
torch::Tensor Upsample(const torch::nn::ModuleListImpl& upsamplers, const torch::Tensor& x,
                       const std::vector<torch::Tensor>& skips) {
  std::optional<std::vector<int64_t>> size;
  if (!skips.empty()) size = std::vector<int64_t>{skips.back().size(2), skips.back().size(3)};
  return upsamplers.ptr(0)->as<Upsample2DImpl>()->forward(x, size);
}

}  // namespace

DownBlock2DImpl::DownBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                                 bool add_downsample, const BlockOptions& options) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    resnets->push_back(
        ResnetBlock2D(i == 0 ? in_channels : out_channels, out_channels, options.resnet));
  }
  if (add_downsample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(Downsample2D(
                                                       out_channels, options.downsample_padding)));
  }
}

torch::Tensor DownBlock2DImpl::Forward(const torch::Tensor& x, const torch::Tensor& temb,
                                       const torch::Tensor& /*context*/,
                                       std::vector<torch::Tensor>* skips) {
  torch::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i) {
    h = RunResnet(*resnets, i, h, temb);
    skips->push_back(h);
  }
  if (downsamplers) {
    h = downsamplers->ptr(0)->as<Downsample2DImpl>()->forward(h);
    skips->push_back(h);
  }
  return h;
}

CrossAttnDownBlock2DImpl::CrossAttnDownBlock2DImpl(int64_t in_channels, int64_t out_channels,
                                                   const std::vector<int64_t>& transformer_layers,
                                                   bool add_downsample,
                                                   const BlockOptions& options) {
  // diffusers registers attentions before resnets, which orders named_parameters() like its
  // state_dict.
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (size_t i = 0; i < transformer_layers.size(); ++i) {
    resnets->push_back(
        ResnetBlock2D(i == 0 ? in_channels : out_channels, out_channels, options.resnet));
    attentions->push_back(MakeTransformer(out_channels, transformer_layers[i], options));
  }
  if (add_downsample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList(Downsample2D(
                                                       out_channels, options.downsample_padding)));
  }
}

torch::Tensor CrossAttnDownBlock2DImpl::Forward(const torch::Tensor& x, const torch::Tensor& temb,
                                                const torch::Tensor& context,
                                                std::vector<torch::Tensor>* skips) {
  torch::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i) {
    h = RunResnet(*resnets, i, h, temb);
    h = RunAttention(*attentions, i, h, context);
    skips->push_back(h);
  }
  if (downsamplers) {
    h = downsamplers->ptr(0)->as<Downsample2DImpl>()->forward(h);
    skips->push_back(h);
  }
  return h;
}

UNetMidBlock2DCrossAttnImpl::UNetMidBlock2DCrossAttnImpl(int64_t channels,
                                                         int64_t transformer_layers,
                                                         const BlockOptions& options) {
  attentions = register_module(
      "attentions", torch::nn::ModuleList(MakeTransformer(channels, transformer_layers, options)));
  resnets = register_module(
      "resnets", torch::nn::ModuleList(ResnetBlock2D(channels, channels, options.resnet),
                                       ResnetBlock2D(channels, channels, options.resnet)));
}

torch::Tensor UNetMidBlock2DCrossAttnImpl::forward(const torch::Tensor& x,
                                                   const torch::Tensor& temb,
                                                   const torch::Tensor& context) {
  torch::Tensor h = RunResnet(*resnets, 0, x, temb);
  for (size_t i = 0; i < attentions->size(); ++i) {
    h = RunAttention(*attentions, i, h, context);
    h = RunResnet(*resnets, i + 1, h, temb);
  }
  return h;
}

UpBlock2DImpl::UpBlock2DImpl(int64_t in_channels, int64_t prev_output_channels,
                             int64_t out_channels, int64_t num_layers, bool add_upsample,
                             const BlockOptions& options) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    const int64_t skip_channels = i == num_layers - 1 ? in_channels : out_channels;
    const int64_t resnet_in = i == 0 ? prev_output_channels : out_channels;
    resnets->push_back(ResnetBlock2D(resnet_in + skip_channels, out_channels, options.resnet));
  }
  if (add_upsample)
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(Upsample2D(out_channels)));
}

torch::Tensor UpBlock2DImpl::Forward(const torch::Tensor& x, const torch::Tensor& temb,
                                     const torch::Tensor& /*context*/,
                                     std::vector<torch::Tensor>* skips) {
  torch::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i)
    h = RunResnet(*resnets, i, ConcatLastSkip(h, skips), temb);
  if (upsamplers) h = Upsample(*upsamplers, h, *skips);
  return h;
}

CrossAttnUpBlock2DImpl::CrossAttnUpBlock2DImpl(int64_t in_channels, int64_t prev_output_channels,
                                               int64_t out_channels,
                                               const std::vector<int64_t>& transformer_layers,
                                               bool add_upsample, const BlockOptions& options) {
  // diffusers registers attentions before resnets, which orders named_parameters() like its
  // state_dict.
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets = register_module("resnets", torch::nn::ModuleList());
  const size_t num_layers = transformer_layers.size();
  for (size_t i = 0; i < num_layers; ++i) {
    const int64_t skip_channels = i == num_layers - 1 ? in_channels : out_channels;
    const int64_t resnet_in = i == 0 ? prev_output_channels : out_channels;
    resnets->push_back(ResnetBlock2D(resnet_in + skip_channels, out_channels, options.resnet));
    attentions->push_back(MakeTransformer(out_channels, transformer_layers[i], options));
  }
  if (add_upsample)
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(Upsample2D(out_channels)));
}

torch::Tensor CrossAttnUpBlock2DImpl::Forward(const torch::Tensor& x, const torch::Tensor& temb,
                                              const torch::Tensor& context,
                                              std::vector<torch::Tensor>* skips) {
  torch::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i) {
    h = RunResnet(*resnets, i, ConcatLastSkip(h, skips), temb);
    h = RunAttention(*attentions, i, h, context);
  }
  if (upsamplers) h = Upsample(*upsamplers, h, *skips);
  return h;
}

}  // namespace likeness::model::unet

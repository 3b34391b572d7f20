#include "worker/model/vae/vae_blocks.h"

#include <string>

#include "worker/model/attention.h"

namespace likeness::model {
namespace {

constexpr int64_t kConvKernel = 3;
constexpr int64_t kConvPadding = 1;
constexpr int64_t kShortcutKernel = 1;
constexpr int64_t kDownsampleStride = 2;
constexpr double kUpsampleScale = 2.0;
// diffusers' Downsample2D with padding=0 pads right and bottom by one before its unpadded
// stride-2 conv: (left, right, top, bottom) for torch's constant_pad_nd on [B, C, H, W].
constexpr int64_t kDownsamplePad[] = {0, 1, 0, 1};

}  // namespace

VaeResnetBlockImpl::VaeResnetBlockImpl(int64_t in_channels, int64_t out_channels,
                                       int64_t norm_groups) {
  norm1 = register_module("norm1", GroupNorm(norm_groups, in_channels, kVaeNormEps));
  conv1 = register_module("conv1", Conv2d(in_channels, out_channels, kConvKernel, 1, kConvPadding));
  norm2 = register_module("norm2", GroupNorm(norm_groups, out_channels, kVaeNormEps));
  conv2 =
      register_module("conv2", Conv2d(out_channels, out_channels, kConvKernel, 1, kConvPadding));
  if (in_channels != out_channels) {
    conv_shortcut =
        register_module("conv_shortcut", Conv2d(in_channels, out_channels, kShortcutKernel));
  }
}

torch::Tensor VaeResnetBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv1(torch::silu(norm1(x)));
  // diffusers' dropout sits here; it is 0 in every VAE and a no-op at inference.
  h = conv2(torch::silu(norm2(h)));
  const torch::Tensor shortcut = conv_shortcut ? conv_shortcut(x) : x;
  return shortcut + h;  // output_scale_factor is 1 in the VAE
}

VaeDownsampleImpl::VaeDownsampleImpl(int64_t channels) {
  conv = register_module("conv",
                         Conv2d(channels, channels, kConvKernel, kDownsampleStride, /*padding=*/0));
}

torch::Tensor VaeDownsampleImpl::forward(const torch::Tensor& x) {
  return conv(torch::constant_pad_nd(x, kDownsamplePad, 0));
}

VaeUpsampleImpl::VaeUpsampleImpl(int64_t channels) {
  conv = register_module("conv", Conv2d(channels, channels, kConvKernel, 1, kConvPadding));
}

torch::Tensor VaeUpsampleImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  // As diffusers: nearest upsampling runs in float32 for bf16 (older kernels lack bf16); it is
  // exact in any dtype, so the round trip changes no value.
  const bool widen = x.scalar_type() == torch::kBFloat16;
  torch::Tensor h =
      F::interpolate(widen ? x.to(torch::kFloat32) : x,
                     F::InterpolateFuncOptions()
                         .scale_factor(std::vector<double>{kUpsampleScale, kUpsampleScale})
                         .mode(torch::kNearest));
  if (widen) h = h.to(torch::kBFloat16);
  return conv(h);
}

VaeAttentionImpl::VaeAttentionImpl(int64_t channels, int64_t head_dim_, int64_t norm_groups)
    : heads(channels / head_dim_), head_dim(head_dim_) {
  TORCH_CHECK(head_dim_ > 0 && channels % head_dim_ == 0, "VAE attention: head_dim ", head_dim_,
              " does not divide channels ", channels);
  group_norm = register_module("group_norm", GroupNorm(norm_groups, channels, kVaeNormEps));
  to_q = register_module("to_q", Linear(channels, channels));
  to_k = register_module("to_k", Linear(channels, channels));
  to_v = register_module("to_v", Linear(channels, channels));
  out_proj_ = Linear(channels, channels);
  to_out->push_back(out_proj_);
  register_module("to_out", to_out);
}

torch::Tensor VaeAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  const int64_t tokens = height * width;
  // [B, C, H, W] -> [B, C, H*W] -> [B, H*W, C]
  const torch::Tensor h = group_norm(x).reshape({batch, channels, tokens}).transpose(1, 2);
  const auto split_heads = [&](const torch::Tensor& t) {
    // [B, H*W, heads*d] -> [B, H*W, heads, d] -> [B, heads, H*W, d]
    return t.view({batch, tokens, heads, head_dim}).transpose(1, 2);
  };
  // Softmax scale 1/sqrt(head_dim) (Attention's default) and a float32 softmax for half
  // inputs, as diffusers' upcast_softmax=True.
  torch::Tensor o = Attention(split_heads(to_q(h)), split_heads(to_k(h)), split_heads(to_v(h)));
  // [B, heads, H*W, d] -> [B, H*W, heads, d] -> [B, H*W, C]
  o = out_proj_(o.transpose(1, 2).reshape({batch, tokens, channels}));
  // [B, H*W, C] -> [B, C, H*W] -> [B, C, H, W]
  o = o.transpose(1, 2).reshape({batch, channels, height, width});
  return o + x;  // residual_connection=True; rescale_output_factor is 1
}

VaeMidBlockImpl::VaeMidBlockImpl(int64_t channels, int64_t norm_groups, bool add_attention) {
  // diffusers' UNetMidBlock2D with num_layers=1: resnet, attention, resnet. The VAE passes
  // attention_head_dim = channels, so one head of dim `channels`.
  constexpr int kAttentionLayers = 1;
  resnet_blocks_.push_back(VaeResnetBlock(channels, channels, norm_groups));
  for (int i = 0; i < kAttentionLayers; ++i) {
    if (add_attention)
      attention_blocks_.push_back(VaeAttention(channels, /*head_dim=*/channels, norm_groups));
    resnet_blocks_.push_back(VaeResnetBlock(channels, channels, norm_groups));
  }
  for (const auto& block : attention_blocks_) attentions->push_back(block);
  for (const auto& block : resnet_blocks_) resnets->push_back(block);
  register_module("attentions", attentions);
  register_module("resnets", resnets);
}

torch::Tensor VaeMidBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = resnet_blocks_[0](x);
  for (size_t i = 1; i < resnet_blocks_.size(); ++i) {
    if (!attention_blocks_.empty()) h = attention_blocks_[i - 1](h);
    h = resnet_blocks_[i](h);
  }
  return h;
}

DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(int64_t in_channels, int64_t out_channels,
                                               int64_t num_layers, int64_t norm_groups,
                                               bool add_downsample) {
  for (int64_t i = 0; i < num_layers; ++i) {
    resnet_blocks_.push_back(
        VaeResnetBlock(i == 0 ? in_channels : out_channels, out_channels, norm_groups));
    resnets->push_back(resnet_blocks_.back());
  }
  register_module("resnets", resnets);
  if (add_downsample) {
    downsample_ = VaeDownsample(out_channels);
    downsamplers->push_back(downsample_);
    register_module("downsamplers", downsamplers);
  }
}

torch::Tensor DownEncoderBlock2DImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (auto& resnet : resnet_blocks_) h = resnet(h);
  return downsample_ ? downsample_(h) : h;
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(int64_t in_channels, int64_t out_channels,
                                           int64_t num_layers, int64_t norm_groups,
                                           bool add_upsample) {
  for (int64_t i = 0; i < num_layers; ++i) {
    resnet_blocks_.push_back(
        VaeResnetBlock(i == 0 ? in_channels : out_channels, out_channels, norm_groups));
    resnets->push_back(resnet_blocks_.back());
  }
  register_module("resnets", resnets);
  if (add_upsample) {
    upsample_ = VaeUpsample(out_channels);
    upsamplers->push_back(upsample_);
    register_module("upsamplers", upsamplers);
  }
}

torch::Tensor UpDecoderBlock2DImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (auto& resnet : resnet_blocks_) h = resnet(h);
  return upsample_ ? upsample_(h) : h;
}

}  // namespace likeness::model

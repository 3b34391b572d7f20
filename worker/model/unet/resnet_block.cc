#include "worker/model/unet/resnet_block.h"

#include "worker/model/unet/activation_checkpoint.h"

namespace likeness::model::unet {
namespace {

constexpr int64_t kConvKernel = 3;
constexpr int64_t kConvPadding = 1;
constexpr int64_t kDownsampleStride = 2;
constexpr int64_t kUpsampleFactor = 2;

}  // namespace

ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels,
                                     const ResnetOptions& options)
    : options_(options) {
  norm1 = register_module("norm1", GroupNorm(options.groups, in_channels, options.eps));
  conv1 = register_module("conv1", Conv2d(in_channels, out_channels, kConvKernel, 1, kConvPadding));
  if (options.temb_channels > 0) {
    const int64_t temb_out = options.time_scale_shift == ResnetTimeScaleShift::kScaleShift
                                 ? 2 * out_channels
                                 : out_channels;
    time_emb_proj = register_module("time_emb_proj", Linear(options.temb_channels, temb_out));
  }
  norm2 = register_module("norm2", GroupNorm(options.groups, out_channels, options.eps));
  conv2 =
      register_module("conv2", Conv2d(out_channels, out_channels, kConvKernel, 1, kConvPadding));
  if (in_channels != out_channels) {
    conv_shortcut = register_module("conv_shortcut", Conv2d(in_channels, out_channels, 1));
  }
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  if (!gradient_checkpointing || !temb.defined()) return Compute(x, temb);
  return CheckpointedCall(*this, {x, temb}, [this](const std::vector<torch::Tensor>& in) {
    return Compute(in[0], in[1]);
  });
}

torch::Tensor ResnetBlock2DImpl::Compute(const torch::Tensor& x, const torch::Tensor& temb) {
  torch::Tensor h = conv1(torch::silu(norm1(x)));
  torch::Tensor scale, shift;
  if (time_emb_proj && temb.defined()) {
    // [B, T] -> [B, Cout(*2)] -> [B, Cout(*2), 1, 1]
    torch::Tensor t = time_emb_proj(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
    if (options_.time_scale_shift == ResnetTimeScaleShift::kDefault) {
      h = h + t;
    } else {
      // [B, 2*Cout, 1, 1] -> 2 x [B, Cout, 1, 1]
      std::vector<torch::Tensor> parts = t.chunk(2, 1);
      scale = parts[0];
      shift = parts[1];
    }
  }
  h = norm2(h);
  if (scale.defined()) h = h * (1 + scale) + shift;
  h = conv2(torch::silu(h));
  const torch::Tensor residual = conv_shortcut ? conv_shortcut(x) : x;
  torch::Tensor out = residual + h;
  return options_.output_scale_factor == 1.0 ? out : out / options_.output_scale_factor;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t padding) : padding_(padding) {
  conv =
      register_module("conv", Conv2d(channels, channels, kConvKernel, kDownsampleStride, padding));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  // padding 0: pad (left 0, right 1, top 0, bottom 1) like diffusers, then the strided conv.
  return conv(padding_ == 0 ? torch::constant_pad_nd(x, {0, 1, 0, 1}) : x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels) {
  conv = register_module("conv", Conv2d(channels, channels, kConvKernel, 1, kConvPadding));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x,
                                      const std::optional<std::vector<int64_t>>& output_size) {
  const bool via_float = x.scalar_type() == torch::kBFloat16;
  const torch::Tensor in = via_float ? x.to(torch::kFloat32) : x;
  const std::vector<int64_t> size = output_size.value_or(
      std::vector<int64_t>{x.size(2) * kUpsampleFactor, x.size(3) * kUpsampleFactor});
  // [B, C, H, W] -> [B, C, H', W'] (nearest)
  torch::Tensor up = torch::nn::functional::interpolate(
      in, torch::nn::functional::InterpolateFuncOptions().size(size).mode(torch::kNearest));
  if (via_float) up = up.to(x.scalar_type());
  return conv(up);
}

}  // namespace likeness::model::unet

#include "worker/model/vae/vae_coders.h"

#include <algorithm>

namespace likeness::model {
namespace {

constexpr int64_t kConvKernel = 3;
constexpr int64_t kConvPadding = 1;
// The encoder's conv_out gives mean and logvar (diffusers' double_z=True).
constexpr int64_t kPosteriorParts = 2;

}  // namespace

VaeEncoderImpl::VaeEncoderImpl(const VaeConfig& config) {
  const std::vector<int64_t>& channels = config.block_out_channels;
  const int64_t groups = config.norm_num_groups;
  conv_in = register_module(
      "conv_in", Conv2d(config.in_channels, channels.front(), kConvKernel, 1, kConvPadding));
  int64_t block_in = channels.front();
  for (size_t i = 0; i < channels.size(); ++i) {
    const bool is_last = i + 1 == channels.size();
    blocks_.push_back(DownEncoderBlock2D(block_in, channels[i], config.layers_per_block, groups,
                                         /*add_downsample=*/!is_last));
    down_blocks->push_back(blocks_.back());
    block_in = channels[i];
  }
  register_module("down_blocks", down_blocks);
  mid_block = register_module("mid_block",
                              VaeMidBlock(channels.back(), groups, config.mid_block_add_attention));
  conv_norm_out = register_module("conv_norm_out", GroupNorm(groups, channels.back(), kVaeNormEps));
  conv_out =
      register_module("conv_out", Conv2d(channels.back(), kPosteriorParts * config.latent_channels,
                                         kConvKernel, 1, kConvPadding));
}

torch::Tensor VaeEncoderImpl::forward(const torch::Tensor& image) {
  torch::Tensor h = conv_in(image);
  for (auto& block : blocks_) h = block(h);
  h = mid_block(h);
  return conv_out(torch::silu(conv_norm_out(h)));
}

VaeDecoderImpl::VaeDecoderImpl(const VaeConfig& config) {
  std::vector<int64_t> channels = config.block_out_channels;
  std::reverse(channels.begin(), channels.end());
  const int64_t groups = config.norm_num_groups;
  conv_in = register_module(
      "conv_in", Conv2d(config.latent_channels, channels.front(), kConvKernel, 1, kConvPadding));
  mid_block = register_module(
      "mid_block", VaeMidBlock(channels.front(), groups, config.mid_block_add_attention));
  int64_t block_in = channels.front();
  for (size_t i = 0; i < channels.size(); ++i) {
    const bool is_last = i + 1 == channels.size();
    blocks_.push_back(UpDecoderBlock2D(block_in, channels[i], config.layers_per_block + 1, groups,
                                       /*add_upsample=*/!is_last));
    up_blocks->push_back(blocks_.back());
    block_in = channels[i];
  }
  register_module("up_blocks", up_blocks);
  conv_norm_out = register_module("conv_norm_out", GroupNorm(groups, channels.back(), kVaeNormEps));
  conv_out = register_module(
      "conv_out", Conv2d(channels.back(), config.out_channels, kConvKernel, 1, kConvPadding));
}

torch::Tensor VaeDecoderImpl::forward(const torch::Tensor& latent) {
  torch::Tensor h = mid_block(conv_in(latent));
  for (auto& block : blocks_) h = block(h);
  return conv_out(torch::silu(conv_norm_out(h)));
}

}  // namespace likeness::model

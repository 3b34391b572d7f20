#include "worker/model/unet/unet2d_condition.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace likeness::model::unet {
namespace {

std::string ShapeOf(const torch::Tensor& t) {
  return t.defined() ? absl::StrCat("[", absl::StrJoin(t.sizes().vec(), ", "), "]") : "undefined";
}

absl::Status InputError(absl::string_view name, const torch::Tensor& t, absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("UNet input '", name, "' has shape ", ShapeOf(t), "; want ", want));
}

}  // namespace

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNetConfig& config) : config_(config) {
  const absl::Status valid = config.Validate();
  TORCH_CHECK(valid.ok(), valid.ToString());
  const std::vector<int64_t>& channels = config.block_out_channels;
  const int64_t levels = config.num_levels();
  const int64_t temb_dim = config.TimeEmbedDim();

  // Registration follows diffusers' __init__, so named_parameters() is in its state_dict order.
  conv_in =
      register_module("conv_in", Conv2d(config.in_channels, channels[0], config.conv_in_kernel, 1,
                                        (config.conv_in_kernel - 1) / 2));
  time_embedding = register_module("time_embedding", TimestepEmbedding(channels[0], temb_dim));
  if (config.addition_embed_type == AdditionEmbedType::kTextTime) {
    add_embedding = register_module(
        "add_embedding", TimestepEmbedding(config.projection_class_embeddings_input_dim, temb_dim));
  }
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());

  BlockOptions base;
  base.resnet.temb_channels = temb_dim;
  base.resnet.groups = config.norm_num_groups;
  base.resnet.eps = config.norm_eps;
  base.resnet.time_scale_shift = config.resnet_time_scale_shift;
  base.attention.norm_groups = config.norm_num_groups;
  base.attention.use_linear_projection = config.use_linear_projection;
  base.attention.upcast_attention = config.upcast_attention;
  base.downsample_padding = config.downsample_padding;
  const auto level_options = [&](int64_t level) {
    BlockOptions options = base;
    options.attention.heads = config.num_attention_heads[level];
    options.attention.cross_attention_dim = config.cross_attention_dim[level];
    return options;
  };

  int64_t out_channels = channels[0];
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t in_channels = out_channels;
    out_channels = channels[i];
    const bool add_downsample = i != levels - 1;
    if (config.down_block_types[i] == kCrossAttnDownBlock2D) {
      down_blocks->push_back(std::make_shared<CrossAttnDownBlock2DImpl>(
          in_channels, out_channels, config.DownTransformerLayers(i), add_downsample,
          level_options(i)));
    } else {
      down_blocks->push_back(std::make_shared<DownBlock2DImpl>(
          in_channels, out_channels, config.layers_per_block[i], add_downsample, level_options(i)));
    }
  }

  BlockOptions mid_options = level_options(levels - 1);
  mid_options.resnet.output_scale_factor = config.mid_block_scale_factor;
  mid_block = register_module(
      "mid_block",
      UNetMidBlock2DCrossAttn(channels.back(), config.MidTransformerLayers(), mid_options));

  // Up level i mirrors down level levels-1-i: channels, heads and cross_attention_dim reversed.
  out_channels = channels.back();
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t mirror = levels - 1 - i;
    const int64_t prev_output_channels = out_channels;
    out_channels = channels[mirror];
    const int64_t in_channels = channels[std::max<int64_t>(mirror - 1, 0)];
    const bool add_upsample = i != levels - 1;
    if (config.up_block_types[i] == kCrossAttnUpBlock2D) {
      up_blocks->push_back(std::make_shared<CrossAttnUpBlock2DImpl>(
          in_channels, prev_output_channels, out_channels, config.UpTransformerLayers(i),
          add_upsample, level_options(mirror)));
    } else {
      up_blocks->push_back(std::make_shared<UpBlock2DImpl>(
          in_channels, prev_output_channels, out_channels, config.layers_per_block[mirror] + 1,
          add_upsample, level_options(mirror)));
    }
  }

  conv_norm_out = register_module("conv_norm_out",
                                  GroupNorm(config.norm_num_groups, channels[0], config.norm_eps));
  conv_out =
      register_module("conv_out", Conv2d(channels[0], config.out_channels, config.conv_out_kernel,
                                         1, (config.conv_out_kernel - 1) / 2));
}

torch::Tensor UNet2DConditionModelImpl::Embedding(const torch::Tensor& sample,
                                                  const torch::Tensor& timestep,
                                                  const torch::Tensor& text_embeds,
                                                  const torch::Tensor& time_ids) {
  const int64_t batch = sample.size(0);
  // [] or [1] or [B] -> [B]
  const torch::Tensor timesteps = timestep.reshape({-1}).expand({batch});
  const torch::Tensor t_emb = TimestepSinusoid(timesteps, config_.block_out_channels[0],
                                               config_.flip_sin_to_cos, config_.freq_shift)
                                  .to(sample.scalar_type());
  torch::Tensor emb = time_embedding(t_emb);
  if (config_.addition_embed_type != AdditionEmbedType::kTextTime) return emb;
  // [B, n] -> [B*n] -> [B*n, a] -> [B, n*a]
  const torch::Tensor time_embeds =
      TimestepSinusoid(time_ids.flatten(), config_.addition_time_embed_dim, config_.flip_sin_to_cos,
                       config_.freq_shift)
          .reshape({text_embeds.size(0), -1});
  // diffusers concatenates with type promotion, then casts to the embedding's dtype.
  const torch::ScalarType common =
      torch::promote_types(text_embeds.scalar_type(), time_embeds.scalar_type());
  // [B, pooled] + [B, n*a] -> [B, projection_class_embeddings_input_dim]
  const torch::Tensor add_embeds = torch::cat({text_embeds.to(common), time_embeds.to(common)}, -1);
  return emb + add_embedding(add_embeds.to(emb.scalar_type()));
}

torch::Tensor UNet2DConditionModelImpl::forward(const torch::Tensor& sample,
                                                const torch::Tensor& timestep,
                                                const torch::Tensor& encoder_hidden_states,
                                                const torch::Tensor& text_embeds,
                                                const torch::Tensor& time_ids) {
  const torch::Tensor emb = Embedding(sample, timestep, text_embeds, time_ids);
  const torch::Tensor input = config_.center_input_sample ? 2 * sample - 1.0 : sample;
  torch::Tensor h = conv_in(input);
  std::vector<torch::Tensor> skips = {h};
  for (const auto& block : *down_blocks) {
    h = block->as<DownBlockBase>()->Forward(h, emb, encoder_hidden_states, &skips);
  }
  h = mid_block(h, emb, encoder_hidden_states);
  for (const auto& block : *up_blocks) {
    h = block->as<UpBlockBase>()->Forward(h, emb, encoder_hidden_states, &skips);
  }
  return conv_out(torch::silu(conv_norm_out(h)));
}

absl::Status UNet2DConditionModelImpl::CheckInputs(const UNetInputs& in) const {
  const torch::Tensor& x = in.sample;
  if (!x.defined() || x.dim() != 4 || x.size(1) != config_.in_channels) {
    return InputError("sample", x, absl::StrCat("[B, ", config_.in_channels, ", H, W]"));
  }
  if (!x.is_floating_point())
    return absl::InvalidArgumentError("UNet input 'sample' must be floating point");
  const int64_t batch = x.size(0);
  const torch::Tensor& t = in.timestep;
  if (!t.defined() || t.dim() > 1 || (t.numel() != 1 && t.numel() != batch)) {
    return InputError("timestep", t, absl::StrCat("a scalar, [1] or [", batch, "]"));
  }
  const torch::Tensor& context = in.encoder_hidden_states;
  const int64_t context_dim = config_.cross_attention_dim.back();
  if (!context.defined() || context.dim() != 3 || context.size(0) != batch ||
      context.size(2) != context_dim) {
    return InputError("encoder_hidden_states", context,
                      absl::StrCat("[", batch, ", N, ", context_dim, "]"));
  }
  for (int64_t level = 0; level < config_.num_levels(); ++level) {
    if (config_.cross_attention_dim[level] != context_dim) {
      return absl::InvalidArgumentError(
          "UNet: levels with different cross_attention_dim need separate contexts");
    }
  }
  if (config_.addition_embed_type == AdditionEmbedType::kTextTime) {
    const torch::Tensor& ids = in.time_ids;
    if (!ids.defined() || ids.dim() != 2 || ids.size(0) != batch) {
      return InputError("time_ids", ids, absl::StrCat("[", batch, ", 6]"));
    }
    const int64_t pooled = config_.projection_class_embeddings_input_dim -
                           ids.size(1) * config_.addition_time_embed_dim;
    const torch::Tensor& text = in.text_embeds;
    if (!text.defined() || text.dim() != 2 || text.size(0) != batch || text.size(1) != pooled) {
      return InputError("text_embeds", text, absl::StrCat("[", batch, ", ", pooled, "]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> UNet2DConditionModelImpl::Run(const UNetInputs& inputs) {
  LIKENESS_RETURN_IF_ERROR(CheckInputs(inputs));
  try {
    return forward(inputs);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("UNet forward failed: ", e.what_without_backtrace()));
  }
}

void UNet2DConditionModelImpl::SetGradientCheckpointing(bool enabled) {
  gradient_checkpointing_ = enabled;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* resnet = module->as<ResnetBlock2DImpl>()) resnet->gradient_checkpointing = enabled;
    if (auto* block = module->as<BasicTransformerBlockImpl>())
      block->gradient_checkpointing = enabled;
  }
}

absl::StatusOr<UNet2DConditionModel> MakeUNet(const UNetConfig& config) {
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  try {
    return UNet2DConditionModel(config);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("building the UNet failed: ", e.what_without_backtrace()));
  }
}

}  // namespace likeness::model::unet

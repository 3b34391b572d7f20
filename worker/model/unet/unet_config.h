// UNetConfig: every size and switch of diffusers' UNet2DConditionModel that SDXL and its tiny
// test variants use, read from the config.json diffusers writes (`unet/config.json`).
//
// Parsing rules (FromJson):
//   1. A field that is absent takes diffusers' default (v0.24 UNet2DConditionModel.__init__).
//   2. A field that may be an int or a per-level list (layers_per_block, attention_head_dim,
//      num_attention_heads, cross_attention_dim, transformer_layers_per_block) is expanded to one
//      entry per level here, so the modules never see the int form.
//   3. A value this code does not implement (another block type, addition_embed_type "text",
//      class embeddings, dropout > 0, ...) is INVALID_ARGUMENT naming the field and the value,
//      never silently ignored. Unknown fields are errors too, unless they are null or false
//      (a feature that is off); fields starting with "_" and the informational ones in
//      kIgnoredConfigFields are skipped.
//   4. diffusers' attention_head_dim is the NUMBER OF HEADS per level (a historical misnomer,
//      diffusers issue #2011); "num_attention_heads", when set, takes priority over it. The head
//      dim of a level is its channel count divided by its number of heads.
#ifndef LIKENESS_WORKER_MODEL_UNET_UNET_CONFIG_H_
#define LIKENESS_WORKER_MODEL_UNET_UNET_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace likeness::model::unet {

inline constexpr char kDownBlock2D[] = "DownBlock2D";
inline constexpr char kCrossAttnDownBlock2D[] = "CrossAttnDownBlock2D";
inline constexpr char kUpBlock2D[] = "UpBlock2D";
inline constexpr char kCrossAttnUpBlock2D[] = "CrossAttnUpBlock2D";
inline constexpr char kUNetMidBlock2DCrossAttn[] = "UNetMidBlock2DCrossAttn";

// Fields with no effect on the module tree or its math. diffusers passes resnet_out_scale_factor
// and resnet_skip_time_act only to block types this code does not have (Simple*/ResnetDownsample*),
// never to DownBlock2D, CrossAttn*Block2D or UpBlock2D, so they are inert here as there.
inline constexpr const char* kIgnoredConfigFields[] = {
    "sample_size", "addition_embed_type_num_heads", "resnet_out_scale_factor",
    "resnet_skip_time_act"};

enum class AdditionEmbedType {
  kNone,      // SD 1.x/2.x: no added conditioning
  kTextTime,  // SDXL: pooled text embedding + sinusoids of the six micro-conditioning numbers
};

enum class ResnetTimeScaleShift {
  kDefault,     // h = h + time_emb_proj(temb)
  kScaleShift,  // h = norm2(h) * (1 + scale) + shift
};

struct UNetConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;
  // The timestep sinusoid (embeddings.h): [cos, sin] order when true, and the frequency shift.
  bool flip_sin_to_cos = true;
  double freq_shift = 0.0;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;

  // One entry per level, in the down path's order.
  std::vector<std::string> down_block_types = {kCrossAttnDownBlock2D, kCrossAttnDownBlock2D,
                                               kCrossAttnDownBlock2D, kDownBlock2D};
  std::vector<std::string> up_block_types = {kUpBlock2D, kCrossAttnUpBlock2D, kCrossAttnUpBlock2D,
                                             kCrossAttnUpBlock2D};
  std::string mid_block_type = kUNetMidBlock2DCrossAttn;
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  std::vector<int64_t> layers_per_block = {2, 2, 2, 2};
  // [level][layer]: transformer blocks of each Transformer2DModel in the down path. An inner list
  // of one entry applies to every layer of the level. The mid block uses the last level's first.
  std::vector<std::vector<int64_t>> transformer_layers_per_block = {{1}, {1}, {1}, {1}};
  // [up level][layer], layers_per_block + 1 per level; empty: the down path's, reversed.
  std::vector<std::vector<int64_t>> reverse_transformer_layers_per_block;
  // Heads per level (diffusers' attention_head_dim or num_attention_heads; rule 4).
  std::vector<int64_t> num_attention_heads = {8, 8, 8, 8};
  std::vector<int64_t> cross_attention_dim = {1280, 1280, 1280, 1280};
  bool use_linear_projection = false;
  bool upcast_attention = false;

  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1.0;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  ResnetTimeScaleShift resnet_time_scale_shift = ResnetTimeScaleShift::kDefault;

  // 0: block_out_channels[0] * 4 (diffusers' time_embedding_dim null).
  int64_t time_embedding_dim = 0;
  AdditionEmbedType addition_embed_type = AdditionEmbedType::kNone;
  int64_t addition_time_embed_dim = 0;  // kTextTime: sinusoid width per time id
  int64_t projection_class_embeddings_input_dim =
      0;  // kTextTime: pooled + 6 * addition_time_embed_dim

  // Parses diffusers' config.json (rules above) and validates the result.
  static absl::StatusOr<UNetConfig> FromJson(const nlohmann::json& json);
  static absl::StatusOr<UNetConfig> FromJsonString(const std::string& text);
  // stabilityai/stable-diffusion-xl-base-1.0, unet/config.json.
  static UNetConfig SdxlBase();

  // INVALID_ARGUMENT naming the first inconsistent field (list lengths, divisibility by heads and
  // groups, unknown block types).
  absl::Status Validate() const;

  int64_t num_levels() const { return static_cast<int64_t>(block_out_channels.size()); }
  int64_t TimeEmbedDim() const {
    return time_embedding_dim > 0 ? time_embedding_dim : block_out_channels[0] * 4;
  }
  // Transformer blocks per layer, expanded to layers_per_block[level] entries.
  std::vector<int64_t> DownTransformerLayers(int64_t level) const;
  // Up level i (0 = lowest resolution), expanded to layers_per_block[reversed] + 1 entries.
  std::vector<int64_t> UpTransformerLayers(int64_t up_level) const;
  int64_t MidTransformerLayers() const { return transformer_layers_per_block.back().front(); }
};

}  // namespace likeness::model::unet

#endif  // LIKENESS_WORKER_MODEL_UNET_UNET_CONFIG_H_

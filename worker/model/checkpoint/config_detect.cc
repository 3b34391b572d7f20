#include "worker/model/checkpoint/config_detect.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/sgm_structure.h"

namespace likeness::model::checkpoint {
namespace {

using nlohmann::json;

// SDXL's values for what the weights cannot show (DESIGN.md: SDXL specifics).
constexpr int64_t kSdxlAdditionTimeEmbedDim = 256;
constexpr int64_t kSdxlUnetSampleSize = 128;  // 1024 px / the VAE's factor 8
constexpr int64_t kSdxlVaeSampleSize = 1024;
constexpr double kSdxlVaeScalingFactor = 0.13025;
constexpr int64_t kDefaultCrossAttentionDim = 1280;  // diffusers' default, for a UNet without any
// The SDXL base UNet embeds 6 micro-conditioning numbers (original size, crop, target size); the
// refiner 5 (original size, crop, aesthetic score).
constexpr int64_t kTimeIdCounts[] = {6, 5};
// Hidden size -> heads for SDXL's two text encoders: CLIP ViT-L and OpenCLIP bigG.
constexpr std::pair<int64_t, int64_t> kSdxlTextHeads[] = {{768, 12}, {1280, 20}};

class ConfigBuilder {
 public:
  void Weights(const std::string& key, json value) { Set(key, std::move(value), &d_.from_weights); }
  void Convention(const std::string& key, json value) {
    Set(key, std::move(value), &d_.by_convention);
  }
  void Default(const std::string& key, json value) { Set(key, std::move(value), nullptr); }
  void Undetermined(const std::string& key) { Set(key, nullptr, &d_.undetermined); }
  DetectedConfig Take() { return std::move(d_); }

 private:
  void Set(const std::string& key, json value, std::vector<std::string>* list) {
    d_.config[key] = std::move(value);
    if (list != nullptr) list->push_back(key);
  }
  DetectedConfig d_;
};

absl::StatusOr<std::vector<int64_t>> Shape(const StateDict& sd, const std::string& name,
                                           size_t rank, absl::string_view source) {
  auto it = sd.find(name);
  if (it == sd.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": tensor '", name, "' is missing; the config is read from its shape"));
  }
  if (it->second.dim() != static_cast<int64_t>(rank)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": tensor '", name, "' has ", it->second.dim(), " dimensions, expected ", rank));
  }
  return it->second.sizes().vec();
}

// The distinct sizes of dimension `dim` over every tensor whose name ends with `suffix`.
std::set<int64_t> SizesOf(const StateDict& sd, absl::string_view suffix, int64_t dim) {
  std::set<int64_t> sizes;
  for (const auto& [name, tensor] : sd) {
    if (absl::EndsWith(name, suffix) && tensor.dim() > dim) sizes.insert(tensor.size(dim));
  }
  return sizes;
}

std::string DtypeName(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kHalf:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kDouble:
      return "float64";
    default:
      return "float32";
  }
}

// Fills the fields of the add-embedding: SDXL's "text_time" concatenates the pooled text
// embedding with sinusoidal embeddings of the time ids.
void DetectAdditionEmbedding(const StateDict& sd, std::optional<int64_t> pooled_dim,
                             ConfigBuilder& b) {
  auto it = sd.find("add_embedding.linear_1.weight");
  if (it == sd.end() || it->second.dim() != 2) {
    b.Weights("addition_embed_type", nullptr);
    b.Weights("projection_class_embeddings_input_dim", nullptr);
    b.Default("addition_time_embed_dim", nullptr);
    return;
  }
  const int64_t input_dim = it->second.size(1);
  b.Weights("addition_embed_type", "text_time");
  b.Weights("projection_class_embeddings_input_dim", input_dim);
  if (!pooled_dim.has_value()) {
    b.Convention("addition_time_embed_dim", kSdxlAdditionTimeEmbedDim);
    return;
  }
  // input = pooled + ids * time_dim. When both id counts divide, the base model's 6 wins.
  const int64_t rest = input_dim - *pooled_dim;
  for (int64_t ids : kTimeIdCounts) {
    if (rest > 0 && rest % ids == 0) {
      b.Weights("addition_time_embed_dim", rest / ids);
      return;
    }
  }
  b.Undetermined("addition_time_embed_dim");
}

}  // namespace

absl::StatusOr<DetectedConfig> DetectUnetConfig(const StateDict& sd, absl::string_view source,
                                                std::optional<int64_t> pooled_projection_dim) {
  ConfigBuilder b;
  b.Default("_class_name", "UNet2DConditionModel");
  b.Default("_diffusers_version", kDiffusersConfigVersion);
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> conv_in, Shape(sd, "conv_in.weight", 4, source));
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> conv_out, Shape(sd, "conv_out.weight", 4, source));
  b.Weights("in_channels", conv_in[1]);
  b.Weights("conv_in_kernel", conv_in[2]);
  b.Weights("out_channels", conv_out[0]);
  b.Weights("conv_out_kernel", conv_out[2]);

  const int levels = CountIndexed(sd, "down_blocks.");
  const int layers = CountIndexed(sd, "down_blocks.0.resnets.");
  if (levels == 0 || layers == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no down_blocks.*.resnets.*; not a UNet"));
  }
  json channels = json::array(), down_types = json::array(), up_types = json::array(),
       depths = json::array();
  for (int i = 0; i < levels; ++i) {
    LIKENESS_ASSIGN_OR_RETURN(
        std::vector<int64_t> conv1,
        Shape(sd, absl::StrCat("down_blocks.", i, ".resnets.0.conv1.weight"), 4, source));
    channels.push_back(conv1[0]);
    const bool down_attention =
        CountIndexed(sd, absl::StrCat("down_blocks.", i, ".attentions.")) > 0;
    const bool up_attention = CountIndexed(sd, absl::StrCat("up_blocks.", i, ".attentions.")) > 0;
    down_types.push_back(down_attention ? "CrossAttnDownBlock2D" : "DownBlock2D");
    up_types.push_back(up_attention ? "CrossAttnUpBlock2D" : "UpBlock2D");
    // Levels without attention keep diffusers' default of 1; the number is unused there.
    const int depth =
        CountIndexed(sd, absl::StrCat("down_blocks.", i, ".attentions.0.transformer_blocks."));
    depths.push_back(depth > 0 ? depth : 1);
  }
  b.Weights("block_out_channels", channels);
  b.Weights("layers_per_block", layers);
  b.Weights("down_block_types", down_types);
  b.Weights("up_block_types", up_types);
  b.Weights("transformer_layers_per_block", depths);

  // diffusers runs up block i with depth reversed(transformer_layers_per_block)[i] unless
  // reverse_transformer_layers_per_block lists each up block's depths.
  bool up_matches = true;
  json reverse = json::array();
  for (int i = 0; i < levels; ++i) {
    json per_layer = json::array();
    for (int j = 0; j < layers + 1; ++j) {
      const int depth = CountIndexed(
          sd, absl::StrCat("up_blocks.", i, ".attentions.", j, ".transformer_blocks."));
      if (depth > 0 && depth != depths[levels - 1 - i].get<int>()) up_matches = false;
      per_layer.push_back(depth > 0 ? depth : 1);
    }
    reverse.push_back(per_layer);
  }
  b.Weights("reverse_transformer_layers_per_block", up_matches ? json(nullptr) : reverse);

  if (CountIndexed(sd, "mid_block.attentions.") > 0) {
    const int mid_depth = CountIndexed(sd, "mid_block.attentions.0.transformer_blocks.");
    if (mid_depth != depths.back().get<int>()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": the mid block has ", mid_depth, " transformer blocks and the last level ",
          depths.back().get<int>(), "; UNet2DConditionModel gives both the same depth"));
    }
    b.Weights("mid_block_type", "UNetMidBlock2DCrossAttn");
  } else {
    b.Weights("mid_block_type",
              CountIndexed(sd, "mid_block.resnets.") > 0 ? json("UNetMidBlock2D") : json(nullptr));
  }

  const std::set<int64_t> context_dims = SizesOf(sd, ".attn2.to_k.weight", 1);
  if (context_dims.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": cross-attention widths differ between blocks (",
                     absl::StrJoin(context_dims, ", "), "); not supported"));
  }
  if (context_dims.empty()) {
    b.Convention("cross_attention_dim", kDefaultCrossAttentionDim);
  } else {
    b.Weights("cross_attention_dim", *context_dims.begin());
  }
  // proj_in is a Linear [C, C] with use_linear_projection, a 1x1 conv [C, C, 1, 1] without.
  const std::set<int64_t> proj_in_ranks = [&] {
    std::set<int64_t> ranks;
    for (const auto& [name, tensor] : sd) {
      if (absl::EndsWith(name, ".proj_in.weight")) ranks.insert(tensor.dim());
    }
    return ranks;
  }();
  b.Weights("use_linear_projection", proj_in_ranks.count(2) > 0);

  DetectAdditionEmbedding(sd, pooled_projection_dim, b);
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> time_1,
                            Shape(sd, "time_embedding.linear_1.weight", 2, source));
  // diffusers' default time embedding width is 4 x the first level's channels.
  b.Weights("time_embedding_dim", time_1[0] == 4 * conv_in[0] ? json(nullptr) : json(time_1[0]));
  const std::set<int64_t> time_proj =
      SizesOf(sd, "down_blocks.0.resnets.0.time_emb_proj.weight", 0);
  b.Weights("resnet_time_scale_shift",
            !time_proj.empty() && *time_proj.begin() == 2 * channels[0].get<int64_t>()
                ? "scale_shift"
                : "default");
  auto hid = sd.find("encoder_hid_proj.weight");
  b.Weights("encoder_hid_dim", hid == sd.end() ? json(nullptr) : json(hid->second.size(1)));
  b.Weights("encoder_hid_dim_type", hid == sd.end() ? json(nullptr) : json("text_proj"));
  auto cond = sd.find("time_embedding.cond_proj.weight");
  b.Weights("time_cond_proj_dim", cond == sd.end() ? json(nullptr) : json(cond->second.size(1)));

  // Heads are not in the weights. diffusers reads attention_head_dim as the number of heads per
  // level; SDXL's heads are 64 wide, which only holds for SDXL-style UNets (text_time) whose
  // every level is a multiple of 64. Anything else needs an override.
  const bool sdxl_like = sd.count("add_embedding.linear_1.weight") > 0 &&
                         std::all_of(channels.begin(), channels.end(), [](const json& c) {
                           return c.get<int64_t>() % kSdxlHeadDim == 0;
                         });
  if (sdxl_like) {
    json heads = json::array();
    for (const json& c : channels) heads.push_back(c.get<int64_t>() / kSdxlHeadDim);
    b.Convention("attention_head_dim", heads);
  } else {
    b.Undetermined("attention_head_dim");
  }
  b.Convention("sample_size", kSdxlUnetSampleSize);
  b.Convention("norm_num_groups", 32);

  // Class defaults (diffusers 0.24), written so the json is a complete config.json.
  b.Default("act_fn", "silu");
  b.Default("addition_embed_type_num_heads", 64);
  b.Default("attention_type", "default");
  b.Default("center_input_sample", false);
  b.Default("class_embed_type", nullptr);
  b.Default("class_embeddings_concat", false);
  b.Default("cross_attention_norm", nullptr);
  b.Default("downsample_padding", 1);
  b.Default("dropout", 0.0);
  b.Default("dual_cross_attention", false);
  b.Default("flip_sin_to_cos", true);
  b.Default("freq_shift", 0);
  b.Default("mid_block_only_cross_attention", nullptr);
  b.Default("mid_block_scale_factor", 1);
  b.Default("norm_eps", 1e-5);
  b.Default("num_attention_heads", nullptr);
  b.Default("num_class_embeds", nullptr);
  b.Default("only_cross_attention", false);
  b.Default("resnet_out_scale_factor", 1.0);
  b.Default("resnet_skip_time_act", false);
  b.Default("time_embedding_act_fn", nullptr);
  b.Default("time_embedding_type", "positional");
  b.Default("timestep_post_act", nullptr);
  b.Default("upcast_attention", false);
  return b.Take();
}

absl::StatusOr<DetectedConfig> DetectVaeConfig(const StateDict& sd, absl::string_view source) {
  ConfigBuilder b;
  b.Default("_class_name", "AutoencoderKL");
  b.Default("_diffusers_version", kDiffusersConfigVersion);
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> conv_in,
                            Shape(sd, "encoder.conv_in.weight", 4, source));
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> conv_out,
                            Shape(sd, "decoder.conv_out.weight", 4, source));
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> post_quant,
                            Shape(sd, "post_quant_conv.weight", 4, source));
  const int levels = CountIndexed(sd, "encoder.down_blocks.");
  const int layers = CountIndexed(sd, "encoder.down_blocks.0.resnets.");
  if (levels == 0 || layers == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no encoder.down_blocks.*.resnets.*; not a VAE"));
  }
  json channels = json::array(), down_types = json::array(), up_types = json::array();
  for (int i = 0; i < levels; ++i) {
    LIKENESS_ASSIGN_OR_RETURN(
        std::vector<int64_t> conv1,
        Shape(sd, absl::StrCat("encoder.down_blocks.", i, ".resnets.0.conv1.weight"), 4, source));
    channels.push_back(conv1[0]);
    down_types.push_back("DownEncoderBlock2D");
    up_types.push_back("UpDecoderBlock2D");
  }
  b.Weights("in_channels", conv_in[1]);
  b.Weights("out_channels", conv_out[0]);
  b.Weights("latent_channels", post_quant[0]);
  b.Weights("block_out_channels", channels);
  b.Weights("layers_per_block", layers);
  b.Weights("down_block_types", down_types);
  b.Weights("up_block_types", up_types);
  // SDXL's VAE: its latents are scaled by 0.13025 and it overflows in fp16 (force_upcast).
  b.Convention("scaling_factor", kSdxlVaeScalingFactor);
  b.Convention("force_upcast", true);
  b.Convention("sample_size", kSdxlVaeSampleSize);
  b.Convention("norm_num_groups", 32);
  b.Default("act_fn", "silu");
  return b.Take();
}

absl::StatusOr<DetectedConfig> DetectClipTextConfig(const StateDict& sd,
                                                    absl::string_view hidden_act,
                                                    absl::string_view source) {
  ConfigBuilder b;
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> tokens,
                            Shape(sd, "text_model.embeddings.token_embedding.weight", 2, source));
  LIKENESS_ASSIGN_OR_RETURN(
      std::vector<int64_t> positions,
      Shape(sd, "text_model.embeddings.position_embedding.weight", 2, source));
  LIKENESS_ASSIGN_OR_RETURN(std::vector<int64_t> fc1,
                            Shape(sd, "text_model.encoder.layers.0.mlp.fc1.weight", 2, source));
  const int64_t hidden = tokens[1];
  b.Weights("vocab_size", tokens[0]);
  b.Weights("hidden_size", hidden);
  b.Weights("max_position_embeddings", positions[0]);
  b.Weights("intermediate_size", fc1[0]);
  b.Weights("num_hidden_layers", CountIndexed(sd, "text_model.encoder.layers."));
  b.Default("torch_dtype", DtypeName(sd.at("text_model.embeddings.token_embedding.weight")));
  auto projection = sd.find("text_projection.weight");
  if (projection != sd.end()) {
    b.Weights("architectures", json::array({"CLIPTextModelWithProjection"}));
    b.Weights("projection_dim", projection->second.size(0));
  } else {
    // Unused without a projection; SDXL's CLIP-L config states its hidden size.
    b.Weights("architectures", json::array({"CLIPTextModel"}));
    b.Convention("projection_dim", hidden);
  }
  auto heads = std::find_if(std::begin(kSdxlTextHeads), std::end(kSdxlTextHeads),
                            [&](const auto& entry) { return entry.first == hidden; });
  if (heads != std::end(kSdxlTextHeads)) {
    b.Convention("num_attention_heads", heads->second);
  } else {
    b.Undetermined("num_attention_heads");
  }
  b.Convention("hidden_act", std::string(hidden_act));
  // SDXL's text encoder configs (legacy token ids, which transformers' pooling relies on).
  b.Convention("bos_token_id", 0);
  b.Convention("eos_token_id", 2);
  b.Convention("pad_token_id", 1);
  b.Default("attention_dropout", 0.0);
  b.Default("dropout", 0.0);
  b.Default("initializer_factor", 1.0);
  b.Default("initializer_range", 0.02);
  b.Default("layer_norm_eps", 1e-5);
  b.Default("model_type", "clip_text_model");
  b.Default("transformers_version", kTransformersConfigVersion);
  return b.Take();
}

namespace {

// A number and a per-level list of that number are the same setting in diffusers' configs.
bool SameSetting(const json& a, const json& b) {
  if (a == b) return true;
  const json* list = a.is_array() ? &a : (b.is_array() ? &b : nullptr);
  const json* scalar = a.is_number() ? &a : (b.is_number() ? &b : nullptr);
  if (list == nullptr || scalar == nullptr) return false;
  return !list->empty() &&
         std::all_of(list->begin(), list->end(), [&](const json& x) { return x == *scalar; });
}

void Erase(std::vector<std::string>& list, const std::string& key) {
  list.erase(std::remove(list.begin(), list.end(), key), list.end());
}

}  // namespace

absl::Status ApplyConfigOverride(const json& override_config, absl::string_view source,
                                 DetectedConfig& detected) {
  if (override_config.is_null()) return absl::OkStatus();
  if (!override_config.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": a config override must be a JSON object"));
  }
  for (const auto& [key, value] : override_config.items()) {
    const bool measured = std::find(detected.from_weights.begin(), detected.from_weights.end(),
                                    key) != detected.from_weights.end();
    if (measured && !SameSetting(detected.config[key], value)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": the config override sets ", key,
                                                     " = ", value.dump(), " but the weights give ",
                                                     detected.config[key].dump()));
    }
    detected.config[key] = value;
    Erase(detected.undetermined, key);
    Erase(detected.by_convention, key);
  }
  return absl::OkStatus();
}

absl::Status CheckConfigComplete(const DetectedConfig& detected, absl::string_view component,
                                 absl::string_view source) {
  if (detected.undetermined.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      source, ": the ", component, " config needs ", absl::StrJoin(detected.undetermined, ", "),
      ", which the weights do not show (attention heads are not in any tensor shape); give them in "
      "a "
      "config override under \"",
      component, "\", as config.json names them"));
}

}  // namespace likeness::model::checkpoint

#include "worker/model/vision/vision_config.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/model/vision/config_json.h"

namespace likeness::model {
namespace {

using vision_internal::ConfigFieldError;
using vision_internal::ConfigFieldReader;

constexpr char kClipVisionConfigName[] = "CLIP vision config";
constexpr char kViTConfigName[] = "ViT config";
constexpr char kVisionConfigKey[] = "vision_config";
constexpr char kProjectionDimKey[] = "projection_dim";

// INVALID_ARGUMENT naming the first size below 1, or heads that do not divide the width, or a
// patch larger than the image.
absl::Status ValidateSizes(const char* config_name,
                           std::initializer_list<std::pair<const char*, int64_t>> sizes,
                           int64_t hidden_size, int64_t heads, int64_t image_size,
                           int64_t patch_size, double layer_norm_eps) {
  for (const auto& [field, value] : sizes) {
    if (value < 1) return ConfigFieldError(config_name, field, "a positive integer", value);
  }
  if (hidden_size % heads != 0) {
    return ConfigFieldError(config_name, "num_attention_heads",
                            absl::StrCat("a divisor of hidden_size ", hidden_size), heads);
  }
  if (patch_size > image_size) {
    return ConfigFieldError(config_name, "patch_size",
                            absl::StrCat("at most image_size ", image_size), patch_size);
  }
  if (!(layer_norm_eps > 0.0)) {
    return ConfigFieldError(config_name, "layer_norm_eps", "a positive number", layer_norm_eps);
  }
  return absl::OkStatus();
}

}  // namespace

ClipTextConfig ClipVisionConfig::EncoderLayerConfig() const {
  ClipTextConfig layers;
  layers.hidden_size = hidden_size;
  layers.intermediate_size = intermediate_size;
  layers.num_hidden_layers = num_hidden_layers;
  layers.num_attention_heads = num_attention_heads;
  layers.hidden_act = hidden_act;
  layers.layer_norm_eps = layer_norm_eps;
  return layers;
}

ClipVisionConfig ClipVisionConfig::OpenAiVitL14() {
  ClipVisionConfig config;
  config.hidden_size = 1024;
  config.intermediate_size = 4096;
  config.num_hidden_layers = 24;
  config.num_attention_heads = 16;
  config.image_size = 224;
  config.patch_size = 14;
  config.projection_dim = 768;
  config.hidden_act = ClipActivation::kQuickGelu;
  return config;
}

absl::StatusOr<ClipVisionConfig> ClipVisionConfig::FromJson(const nlohmann::json& json) {
  const ConfigFieldReader top(json, kClipVisionConfigName);
  if (!json.is_object()) return top.Error("(top level)", "a JSON object", json);
  if (const auto type = json.find("model_type"); type != json.end()) {
    if (*type == kFullClipModelType) {
      const auto vision = json.find(kVisionConfigKey);
      if (vision == json.end() || !vision->is_object()) {
        return top.Error(kVisionConfigKey, "an object in a \"clip\" config",
                         vision == json.end() ? nlohmann::json() : *vision);
      }
      LIKENESS_ASSIGN_OR_RETURN(ClipVisionConfig config, FromJson(*vision));
      // CLIPModel sizes visual_projection by the top-level projection_dim; the nested one may
      // be absent (then CLIPVisionConfig's default 512, wrong for ViT-L/14's 768).
      LIKENESS_RETURN_IF_ERROR(top.Int(kProjectionDimKey, config.projection_dim));
      LIKENESS_RETURN_IF_ERROR(config.Validate());
      return config;
    }
    if (*type != kClipVisionModelType) {
      return top.Error("model_type",
                       absl::StrCat("\"", kClipVisionModelType, "\" or \"", kFullClipModelType,
                                    "\""),
                       *type);
    }
  }
  ClipVisionConfig config;
  LIKENESS_RETURN_IF_ERROR(top.Int("hidden_size", config.hidden_size));
  LIKENESS_RETURN_IF_ERROR(top.Int("intermediate_size", config.intermediate_size));
  LIKENESS_RETURN_IF_ERROR(top.Int("num_hidden_layers", config.num_hidden_layers));
  LIKENESS_RETURN_IF_ERROR(top.Int("num_attention_heads", config.num_attention_heads));
  LIKENESS_RETURN_IF_ERROR(top.Int("num_channels", config.num_channels));
  LIKENESS_RETURN_IF_ERROR(top.Int("image_size", config.image_size));
  LIKENESS_RETURN_IF_ERROR(top.Int("patch_size", config.patch_size));
  LIKENESS_RETURN_IF_ERROR(top.Int(kProjectionDimKey, config.projection_dim));
  LIKENESS_RETURN_IF_ERROR(top.Double("layer_norm_eps", config.layer_norm_eps));
  LIKENESS_RETURN_IF_ERROR(top.Activation("hidden_act", config.hidden_act));
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ClipVisionConfig> ClipVisionConfig::FromJsonText(absl::string_view text) {
  LIKENESS_ASSIGN_OR_RETURN(nlohmann::json json,
                            vision_internal::ParseConfigJson(text, kClipVisionConfigName));
  return FromJson(json);
}

absl::Status ClipVisionConfig::Validate() const {
  return ValidateSizes(kClipVisionConfigName,
                       {{"hidden_size", hidden_size},
                        {"intermediate_size", intermediate_size},
                        {"num_hidden_layers", num_hidden_layers},
                        {"num_attention_heads", num_attention_heads},
                        {"num_channels", num_channels},
                        {"image_size", image_size},
                        {"patch_size", patch_size},
                        {kProjectionDimKey, projection_dim}},
                       hidden_size, num_attention_heads, image_size, patch_size, layer_norm_eps);
}

ViTConfig ViTConfig::DinoVitS16() {
  ViTConfig config;
  config.hidden_size = 384;
  config.num_hidden_layers = 12;
  config.num_attention_heads = 6;
  config.intermediate_size = 1536;
  config.image_size = 224;
  config.patch_size = 16;
  return config;
}

absl::StatusOr<ViTConfig> ViTConfig::FromJson(const nlohmann::json& json) {
  const ConfigFieldReader fields(json, kViTConfigName);
  if (!json.is_object()) return fields.Error("(top level)", "a JSON object", json);
  if (const auto type = json.find("model_type"); type != json.end() && *type != kViTModelType) {
    return fields.Error("model_type", absl::StrCat("\"", kViTModelType, "\""), *type);
  }
  ViTConfig config;
  LIKENESS_RETURN_IF_ERROR(fields.Int("hidden_size", config.hidden_size));
  LIKENESS_RETURN_IF_ERROR(fields.Int("num_hidden_layers", config.num_hidden_layers));
  LIKENESS_RETURN_IF_ERROR(fields.Int("num_attention_heads", config.num_attention_heads));
  LIKENESS_RETURN_IF_ERROR(fields.Int("intermediate_size", config.intermediate_size));
  LIKENESS_RETURN_IF_ERROR(fields.Activation("hidden_act", config.hidden_act));
  LIKENESS_RETURN_IF_ERROR(fields.Double("layer_norm_eps", config.layer_norm_eps));
  LIKENESS_RETURN_IF_ERROR(fields.Int("image_size", config.image_size));
  LIKENESS_RETURN_IF_ERROR(fields.Int("patch_size", config.patch_size));
  LIKENESS_RETURN_IF_ERROR(fields.Int("num_channels", config.num_channels));
  LIKENESS_RETURN_IF_ERROR(fields.Bool("qkv_bias", config.qkv_bias));
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ViTConfig> ViTConfig::FromJsonText(absl::string_view text) {
  LIKENESS_ASSIGN_OR_RETURN(nlohmann::json json,
                            vision_internal::ParseConfigJson(text, kViTConfigName));
  return FromJson(json);
}

absl::Status ViTConfig::Validate() const {
  return ValidateSizes(kViTConfigName,
                       {{"hidden_size", hidden_size},
                        {"num_hidden_layers", num_hidden_layers},
                        {"num_attention_heads", num_attention_heads},
                        {"intermediate_size", intermediate_size},
                        {"image_size", image_size},
                        {"patch_size", patch_size},
                        {"num_channels", num_channels}},
                       hidden_size, num_attention_heads, image_size, patch_size, layer_norm_eps);
}

}  // namespace likeness::model

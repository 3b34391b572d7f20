// Configurations of the two image encoders the evaluator uses, as transformers writes them to
// config.json:
//   * ClipVisionConfig: CLIPVisionConfig ("model_type": "clip_vision_model"), CLIP's vision
//     tower (OpenAI ViT-L/14 for CLIP-I and CLIP-T; also the IP-Adapter image encoder).
//   * ViTConfig: ViTConfig ("model_type": "vit"), here for DINO ViT-S/16 (facebook/dino-vits16).
//
// FromJson follows transformers: an absent key takes the class default, a present key must have
// the right type and a sensible value, else INVALID_ARGUMENT naming the key. A full CLIPConfig
// ("model_type": "clip", what openai/clip-vit-large-patch14 ships) is read through its
// "vision_config", with the top-level "projection_dim" (the width CLIPModel built its
// visual_projection with). Dropout settings are read and ignored: these encoders only run in
// inference, where dropout is the identity.
#ifndef LIKENESS_WORKER_MODEL_VISION_VISION_CONFIG_H_
#define LIKENESS_WORKER_MODEL_VISION_VISION_CONFIG_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"
#include "worker/model/text/clip_text_config.h"

namespace likeness::model {

// transformers' model_type values.
inline constexpr char kClipVisionModelType[] = "clip_vision_model";
inline constexpr char kFullClipModelType[] = "clip";
inline constexpr char kViTModelType[] = "vit";

struct ClipVisionConfig {
  // Defaults are transformers' CLIPVisionConfig defaults (ViT-B/32).
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t projection_dim = 512;
  ClipActivation hidden_act = ClipActivation::kQuickGelu;
  double layer_norm_eps = 1e-5;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Patches per side: the stride-patch_size convolution floors, as transformers' does.
  int64_t grid_size() const { return image_size / patch_size; }
  // The class token plus one position per patch.
  int64_t num_positions() const { return grid_size() * grid_size() + 1; }

  // The encoder layers are CLIP's (worker/model/text/clip_text_layers.h), shared with the text
  // tower; they are configured through a ClipTextConfig with this config's sizes.
  ClipTextConfig EncoderLayerConfig() const;

  // openai/clip-vit-large-patch14's vision tower (303,966,208 parameters with its projection).
  static ClipVisionConfig OpenAiVitL14();

  static absl::StatusOr<ClipVisionConfig> FromJson(const nlohmann::json& json);
  static absl::StatusOr<ClipVisionConfig> FromJsonText(absl::string_view text);

  // INVALID_ARGUMENT naming the first impossible field.
  absl::Status Validate() const;
};

struct ViTConfig {
  // Defaults are transformers' ViTConfig defaults (ViT-B/16).
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  ClipActivation hidden_act = ClipActivation::kGelu;
  // ViTConfig's default, which facebook/dino-vits16's config.json keeps; the original DINO code
  // uses kOriginalDinoLayerNormEps.
  double layer_norm_eps = 1e-12;
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t num_channels = 3;
  bool qkv_bias = true;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t grid_size() const { return image_size / patch_size; }
  int64_t num_positions() const { return grid_size() * grid_size() + 1; }

  // facebook/dino-vits16's config.json (21,665,664 parameters without pooler).
  static ViTConfig DinoVitS16();

  static absl::StatusOr<ViTConfig> FromJson(const nlohmann::json& json);
  static absl::StatusOr<ViTConfig> FromJsonText(absl::string_view text);

  absl::Status Validate() const;
};

// facebookresearch/dino's vision_transformer.py builds its norms with eps 1e-6.
inline constexpr double kOriginalDinoLayerNormEps = 1e-6;

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VISION_VISION_CONFIG_H_

// Component configs detected from tensor shapes, as the config.json that diffusers or
// transformers save_pretrained writes, so the model modules parse one format whatever the
// checkpoint was (DESIGN.md: "every size comes from a config struct read from config.json or
// detected from tensor shapes").
//
// Every field is accounted for in one of three ways:
//   1. from_weights: read from shapes or names (channels, layers, block types, ...). An override
//      may not contradict these; a contradiction is an error rather than a model that fails to
//      load later with a shape mismatch.
//   2. by_convention: not in the weights, set to SDXL's value (e.g. heads = channels / 64 for an
//      SDXL UNet, 12 heads for CLIP-L at 768, 20 for bigG at 1280, the VAE's scaling factor).
//      An override replaces them.
//   3. undetermined: null; neither the weights nor a convention tell (e.g. the heads of a tiny
//      test model). CheckConfigComplete() refuses a config that still has one.
// Fields that are plain defaults of the class (act_fn "silu", norm_eps 1e-5, ...) are written
// too and belong to no list.
#ifndef LIKENESS_WORKER_MODEL_CHECKPOINT_CONFIG_DETECT_H_
#define LIKENESS_WORKER_MODEL_CHECKPOINT_CONFIG_DETECT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "worker/model/state_dict.h"

namespace likeness::model::checkpoint {

// The versions whose config.json format the detected configs follow (the golden data's).
inline constexpr char kDiffusersConfigVersion[] = "0.24.0";
inline constexpr char kTransformersConfigVersion[] = "4.35.0";

// SDXL's attention head size: every SDXL attention (UNet, CLIP-L, bigG) has heads of 64 channels.
inline constexpr int64_t kSdxlHeadDim = 64;

struct DetectedConfig {
  nlohmann::json config;
  std::vector<std::string> from_weights;
  std::vector<std::string> by_convention;
  std::vector<std::string> undetermined;
};

// UNet2DConditionModel from diffusers names. `pooled_projection_dim` (text_encoder_2's
// projection_dim) lets addition_time_embed_dim be computed from the add-embedding's input
// width; without it SDXL's 256 is assumed.
absl::StatusOr<DetectedConfig> DetectUnetConfig(
    const StateDict& unet, absl::string_view source,
    std::optional<int64_t> pooled_projection_dim = std::nullopt);

// AutoencoderKL from diffusers names.
absl::StatusOr<DetectedConfig> DetectVaeConfig(const StateDict& vae, absl::string_view source);

// CLIPTextModel, or CLIPTextModelWithProjection when text_projection.weight is present, from
// transformers names. The activation cannot be seen in the weights: SDXL's CLIP-L uses
// "quick_gelu", OpenCLIP bigG "gelu"; the caller knows which encoder it has.
absl::StatusOr<DetectedConfig> DetectClipTextConfig(const StateDict& text,
                                                    absl::string_view hidden_act,
                                                    absl::string_view source);

// Each field of `override_config` (a config.json object, or null for none) replaces the detected
// one. INVALID_ARGUMENT naming the field and both values when it contradicts a from_weights
// field; a number and a list of that number per level count as the same setting.
absl::Status ApplyConfigOverride(const nlohmann::json& override_config, absl::string_view source,
                                 DetectedConfig& detected);

// FAILED_PRECONDITION naming each undetermined field, the component and `source`, and saying
// how to supply them.
absl::Status CheckConfigComplete(const DetectedConfig& detected, absl::string_view component,
                                 absl::string_view source);

}  // namespace likeness::model::checkpoint

#endif  // LIKENESS_WORKER_MODEL_CHECKPOINT_CONFIG_DETECT_H_

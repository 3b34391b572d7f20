// Loading the evaluator's encoders from the files users have.
//
// PATH (for CLIP or DINO) is either
//   1. a transformers model folder, config.json + model.safetensors (or a sharded
//      model.safetensors.index.json), as openai/clip-vit-large-patch14 and facebook/dino-vits16
//      download; or
//   2. a .safetensors file. Its config is the config.json in the same folder when that file
//      names a model_type this encoder accepts; otherwise the config is detected from the tensor
//      shapes (below) and the result says so.
// Pickle weights (.bin, .pth) are never read (unpickling runs arbitrary code): convert them to
// safetensors first.
//
// CLIP files hold one of
//   * CLIPVisionModelWithProjection: vision_model.*, visual_projection.weight;
//   * a full CLIPModel: those plus text_model.*, text_projection.weight and logit_scale. Both
//     towers load from the one file: the vision tower here, the text tower as the existing
//     CLIPTextModelWithProjection (worker/model/text), which CLIP-T needs.
// DINO files hold transformers' ViTModel names (facebook/dino-vits16) or the original DINO names
// (dino_rename_table.h), told apart by the names.
//
// Detection from shapes takes every size from the tensors. What shapes cannot show is assumed,
// and each assumption holds for the published checkpoints these metrics use:
//   * attention heads = hidden / kAssumedHeadDim (OpenAI CLIP ViT-B and ViT-L, their text
//     towers, DINO ViT-S and ViT-B all have 64-wide heads);
//   * CLIP: quick_gelu and eps 1e-5 (OpenAI's models); the text tower's eos_token_id is 2, as in
//     openai's config.json (the pooled output is then read at the first <|endoftext|>);
//   * DINO: exact GELU; eps 1e-12 with transformers names (facebook/dino-vits16's config.json),
//     1e-6 with original names (the DINO code).
// Loads are strict (state_dict.h): a tensor a tower needs but the file lacks is an error naming
// it; tensors no tower knows are returned in `unexpected` for the caller to report.
#ifndef LIKENESS_WORKER_MODEL_VISION_VISION_CHECKPOINT_H_
#define LIKENESS_WORKER_MODEL_VISION_VISION_CHECKPOINT_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_config.h"
#include "worker/model/text/clip_text_model.h"
#include "worker/model/vision/clip_vision_model.h"
#include "worker/model/vision/vision_config.h"
#include "worker/model/vision/vit_model.h"

namespace likeness::model {

inline constexpr int64_t kAssumedHeadDim = 64;
// OpenAI's CLIP text config keeps transformers' legacy eos id (pooling at argmax(ids)).
inline constexpr int64_t kOpenAiClipTextEosTokenId = kLegacyEosTokenId;

// Where each CLIPModel tensor belongs.
inline constexpr char kClipVisionPrefix[] = "vision_model.";
inline constexpr char kClipVisualProjectionPrefix[] = "visual_projection.";
inline constexpr char kClipTextPrefix[] = "text_model.";
inline constexpr char kClipTextProjectionPrefix[] = "text_projection.";
// CLIPModel's learned softmax temperature: used in training only, never by a metric.
inline constexpr const char* kClipUnusedKeys[] = {"logit_scale"};

struct VisionLoadOptions {
  torch::Device device = torch::kCPU;
};

// How a config was found: for messages and the evaluation report.
struct ConfigSource {
  std::string description;  // "config.json (/path/config.json)" or "detected from tensor shapes"
  nlohmann::json config;    // the config used, as transformers would write it
};

struct LoadedClip {
  CLIPVisionModelWithProjection vision{nullptr};
  CLIPTextModelWithProjection text{nullptr};  // null when the file holds no text tower
  std::string weights_path;
  ConfigSource config;
  std::vector<std::string> ignored;     // known tensors no tower uses (logit_scale, position_ids)
  std::vector<std::string> unexpected;  // tensors no tower knows
};

struct LoadedDino {
  ViTModel model{nullptr};
  std::string weights_path;
  std::string naming;  // "transformers ViTModel" or "original DINO"
  ConfigSource config;
  std::vector<std::string> ignored;
  std::vector<std::string> unexpected;
};

// Both models come back in eval mode on options.device. Errors name the path and the tensor:
// NOT_FOUND for a missing path, INVALID_ARGUMENT for files that are not such a model,
// FAILED_PRECONDITION for pickle-only folders.
absl::StatusOr<LoadedClip> LoadClip(const std::string& path, const VisionLoadOptions& options = {});
absl::StatusOr<LoadedDino> LoadDino(const std::string& path, const VisionLoadOptions& options = {});

// Detection from shapes (see above); `weights` carry transformers names. INVALID_ARGUMENT naming
// the tensor that is missing or has an unexpected shape.
absl::StatusOr<ClipVisionConfig> DetectClipVisionConfig(const StateDict& weights);
absl::StatusOr<ClipTextConfig> DetectClipTextConfig(const StateDict& weights);
absl::StatusOr<ViTConfig> DetectViTConfig(const StateDict& weights, double layer_norm_eps);

// transformers' config.json for a config (the fields FromJson reads).
nlohmann::json ClipVisionConfigToJson(const ClipVisionConfig& config);
nlohmann::json ClipTextConfigToJson(const ClipTextConfig& config);
nlohmann::json ViTConfigToJson(const ViTConfig& config);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VISION_VISION_CHECKPOINT_H_

// Diffusers folders: a pipeline (model_index.json naming its component folders) or one
// component folder on its own (config.json + weights), read without renaming (DESIGN.md).
//
// Weights of a component folder, looked up in this order for variant V ("" = none):
//   1. <base>.safetensors, or <base>.V.safetensors for a variant;
//   2. a sharded checkpoint: <base>.safetensors.index.json (for a variant, diffusers' and
//      transformers' <base>.safetensors.index.V.json, or <base>.V.safetensors.index.json),
//      whose "weight_map" maps each tensor name to its shard file in the same folder;
// where <base> is diffusion_pytorch_model (diffusers) or model (transformers).
// Pickle weights (*.bin, *.ckpt, *.pt, *.pth) are never read: unpickling runs arbitrary code.
//
// A sharded checkpoint loads only when it is consistent: every shard exists, every name is in
// the shard the index gives, and every tensor of a shard is in the index. Errors name the index
// file, the shard and the tensor.
#ifndef LIKENESS_WORKER_MODEL_CHECKPOINT_DIFFUSERS_FOLDER_H_
#define LIKENESS_WORKER_MODEL_CHECKPOINT_DIFFUSERS_FOLDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "worker/model/state_dict.h"

namespace likeness::model::checkpoint {

inline constexpr char kModelIndexFile[] = "model_index.json";
inline constexpr char kComponentConfigFile[] = "config.json";
inline constexpr char kDiffusersWeightsBase[] = "diffusion_pytorch_model";
inline constexpr char kTransformersWeightsBase[] = "model";

struct DiffusersComponent {
  std::string name;        // "unet": its folder in the pipeline
  std::string library;     // "diffusers", "transformers"
  std::string class_name;  // "UNet2DConditionModel"
  std::string dir;         // the component's folder
};

struct DiffusersPipelineFolder {
  std::string path;
  std::string variant;            // "" or e.g. "fp16"
  bool single_component = false;  // `path` is one component folder, not a pipeline
  nlohmann::json model_index;     // null for a single component folder
  // Every component model_index.json names with a [library, class] pair; for a single
  // component folder, that one folder (named after it, class from its config.json).
  std::vector<DiffusersComponent> components;

  const DiffusersComponent* Find(absl::string_view name) const;
};

// NOT_FOUND when `path` is missing, has neither model_index.json nor config.json, or when
// model_index.json names components whose folders are absent (all of them named);
// INVALID_ARGUMENT for malformed JSON.
absl::StatusOr<DiffusersPipelineFolder> OpenDiffusersFolder(const std::string& path,
                                                            absl::string_view variant = "");

// The component's config.json.
absl::StatusOr<nlohmann::json> LoadComponentConfig(const DiffusersPipelineFolder& folder,
                                                   absl::string_view name);

// The component's weights under their names, zero-copy views of the mapped file(s).
absl::StatusOr<StateDict> LoadComponent(const DiffusersPipelineFolder& folder,
                                        absl::string_view name);

// The file LoadComponent reads in `dir`: a .safetensors or a .safetensors.index.json.
// NOT_FOUND for none (naming what is there, e.g. other variants); FAILED_PRECONDITION when only
// pickle weights are there.
absl::StatusOr<std::string> FindWeightsFile(const std::string& dir, absl::string_view variant);

}  // namespace likeness::model::checkpoint

#endif  // LIKENESS_WORKER_MODEL_CHECKPOINT_DIFFUSERS_FOLDER_H_

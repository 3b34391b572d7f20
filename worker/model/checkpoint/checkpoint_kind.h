// What a checkpoint path holds, decided from the folder layout or the tensor names alone (the
// safetensors header; no tensor data is read).
//
//   folder with model_index.json          -> kDiffusersPipeline
//   folder with config.json               -> kDiffusersComponent
//   .safetensors with model.diffusion_model.* (and conditioner.* / first_stage_model.*)
//                                         -> kSingleFile (sgm_convert.h)
//   .safetensors with lora_unet_* / lora_te1_* / lora_te2_* and lora_down/lora_up/alpha
//                                         -> kLoraKohya
//   .safetensors with unet.* / text_encoder.* / text_encoder_2.* and lora_down/lora_up
//     (or PEFT's lora_A/lora_B)            -> kLoraDiffusers
// LoRA files are only recognised here; applying them is the sampler's and trainer's work.
#ifndef LIKENESS_WORKER_MODEL_CHECKPOINT_CHECKPOINT_KIND_H_
#define LIKENESS_WORKER_MODEL_CHECKPOINT_CHECKPOINT_KIND_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace likeness::model::checkpoint {

enum class CheckpointKind {
  kDiffusersPipeline,
  kDiffusersComponent,
  kSingleFile,
  kLoraKohya,
  kLoraDiffusers,
};

absl::string_view CheckpointKindName(CheckpointKind kind);  // "diffusers pipeline", ...

// NOT_FOUND for a missing path; FAILED_PRECONDITION for pickle files (.ckpt, .bin, .pt, .pth),
// which are never loaded; INVALID_ARGUMENT for anything else unrecognised (an SD 1.x/2.x file,
// a folder without model_index.json or config.json), naming the path and a few tensor names.
absl::StatusOr<CheckpointKind> DetectCheckpoint(const std::string& path);

}  // namespace likeness::model::checkpoint

#endif  // LIKENESS_WORKER_MODEL_CHECKPOINT_CHECKPOINT_KIND_H_

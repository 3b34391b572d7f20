// Single-file SDXL checkpoints (the original Stability "SGM" names that AUTOMATIC1111 and
// ComfyUI load) to per-component diffusers state dicts and configs, and back.
//
// ConvertSingleFile, in order:
//   1. Each tensor goes to the component whose prefix it has (sgm_rename_table.h); a tensor under
//      no prefix is ignored when it is a known harmless extra, else listed in `unknown`.
//   2. Per component, the structure is read from its names (sgm_structure.h) and the rename
//      table instantiated for it. Each table entry's tensor is converted with its op; an entry
//      the file lacks is collected as missing, by its full single-file name.
//   3. Tensors of a component that no entry names are ignored or unknown as in 1.
//   4. Any missing tensor fails the conversion (INVALID_ARGUMENT listing them all).
//   5. Configs are detected from the converted shapes (config_detect.h), the override applied,
//      and a config that still lacks a field fails (FAILED_PRECONDITION naming it).
// No op copies: a q/k/v split is three narrows, the 1x1 reshape and the transpose are views, so
// the tensors stay views of the caller's (of the mapped file). Dtypes are kept; conversion to
// the model's dtype happens once, in LoadStateDict.
#ifndef LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_CONVERT_H_
#define LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_CONVERT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "worker/model/checkpoint/sgm_rename_table.h"
#include "worker/model/state_dict.h"

namespace likeness::model::checkpoint {

struct SdxlComponents {
  // Diffusers/transformers names, as in each component folder's weights file.
  StateDict unet, vae, text_encoder, text_encoder_2;
  // config.json objects as diffusers/transformers write them; null for an absent component.
  nlohmann::json unet_config, vae_config, text_encoder_config, text_encoder_2_config;
  std::vector<std::string> ignored;  // known harmless extras (logit_scale, position_ids, ...)
  std::vector<std::string>
      unknown;  // tensors the table does not know: reported, never dropped silently
  // Components with no tensor in the file ("vae" for a UNet-only file); the caller must take
  // them from elsewhere. The UNet is never absent.
  std::vector<std::string> absent;

  StateDict& Weights(Component component);
  const StateDict& Weights(Component component) const;
  nlohmann::json& Config(Component component);
  const nlohmann::json& Config(Component component) const;
};

// `config_override`: null, or an object keyed by component name ("unet", "vae", "text_encoder",
// "text_encoder_2") whose values are config.json objects (ApplyConfigOverride). `source_name`
// goes into every error.
absl::StatusOr<SdxlComponents> ConvertSingleFile(const StateDict& sgm,
                                                 absl::string_view source_name,
                                                 const nlohmann::json& config_override = nullptr);

// Opens `path` (safetensors only) and converts it; the tensors are views of the mapped file.
absl::StatusOr<SdxlComponents> LoadSingleFile(const std::string& path,
                                              const nlohmann::json& config_override = nullptr);

// The inverse: single-file names for the components' weights (configs are not stored). Every
// tensor must have a single-file name; INVALID_ARGUMENT lists those that do not, or the ones a
// fused tensor lacks.
absl::StatusOr<StateDict> ToSingleFile(const SdxlComponents& components,
                                       absl::string_view source_name);

}  // namespace likeness::model::checkpoint

#endif  // LIKENESS_WORKER_MODEL_CHECKPOINT_SGM_CONVERT_H_

// Exports of a full fine-tune (DreamBooth) that other tools load: a diffusers pipeline folder
// and a single-file SDXL checkpoint (the SGM names AUTOMATIC1111 and ComfyUI read), written
// at the end of a run into <output_dir>/export/ (kExportDir):
//
//   export/diffusers/model_index.json, unet/, vae/, text_encoder/, text_encoder_2/
//                    (config.json + weights each; scheduler/ and tokenizer*/ copied from a
//                    diffusers base model when it has them)
//   export/model.safetensors   the four components under single-file names
//
// Storage: a checkpoint folder holds the trained UNet once, in unet.safetensors (diffusers
// names, float32 as trained; resume reads it from there, trainer_state.safetensors does not
// repeat it). The export's diffusers UNet file is a HARD LINK to that file when it has the
// same bytes (no EMA), so it costs no space and survives checkpoint pruning; where the file
// system refuses hard links it is copied. The single file cannot share bytes (other names,
// one file for all components), so it is an export beside the checkpoints, never inside one.
// With EMA on, both exports hold the EMA weights (what diffusers' scripts save) and the
// checkpoint keeps the raw weights for resume.
//
// Commit: the export is written to export.tmp/ and renamed over export/, so a crash leaves
// either the previous export or the new one.
#ifndef LIKENESS_WORKER_TRAIN_FULL_EXPORT_H_
#define LIKENESS_WORKER_TRAIN_FULL_EXPORT_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "worker/model/state_dict.h"

namespace likeness::train {

inline constexpr char kExportDir[] = "export";
inline constexpr char kExportDiffusersDir[] = "diffusers";
inline constexpr char kExportSingleFileName[] = "model.safetensors";

// The four components' config.json objects of `base_model` (a diffusers folder or a single
// file; `model_config`: the JSON override, as TrainConfig.model_config), keyed "unet", "vae",
// "text_encoder", "text_encoder_2".
absl::StatusOr<nlohmann::json> BaseModelConfigs(const std::string& base_model,
                                                const std::string& model_config);

struct FullExportInput {
  // Per component ("unet", ...): diffusers/transformers names -> tensors (any device).
  std::map<std::string, model::StateDict> weights;
  nlohmann::json configs;  // BaseModelConfigs
  // Per component: an existing safetensors file holding exactly weights[component] (same names,
  // dtypes and bytes), hard-linked instead of written.
  std::map<std::string, std::string> link_from;
  std::string base_model;  // scheduler/ and tokenizer*/ are copied from it when it has them
};

// Writes <output_dir>/export/ as described above; returns the export folder.
absl::StatusOr<std::string> WriteFullExport(const std::string& output_dir,
                                            const FullExportInput& input);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_FULL_EXPORT_H_

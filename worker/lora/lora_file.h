// LoRA files: read either format (auto-detected), write either, LoRA weights only.
//
// kohya (sd-scripts networks.lora, what ComfyUI and AUTOMATIC1111 load):
//   <name>.lora_down.weight  [rank, in] or [rank, in, k, k]
//   <name>.lora_up.weight    [out, rank] or [out, rank, 1, 1]
//   <name>.alpha             0-dim; absent or 0 means alpha = rank (sd-scripts' rule)
//   with <name> a LoraLayer::kohya_name (lora_layer_index.h): lora_unet_<SGM path>,
//   lora_te1_/lora_te2_<transformers path>, dots as underscores. Read also: diffusers-style UNet
//   names (lora_unet_down_blocks_...) and lora_te_ (SD1.x's single encoder) as lora_te1_.
//   Metadata written: sd-scripts' ss_* keys (ss_network_module "networks.lora",
//   ss_network_dim, ss_network_alpha, ss_base_model_version "sdxl_base_v1-0", ...) and the
//   modelspec.* keys sd-scripts adds for an SDXL LoRA.
// PEFT / diffusers (what diffusers' StableDiffusionXLPipeline.save_lora_weights writes):
//   <component>.<path>.lora_A.weight (= down), <component>.<path>.lora_B.weight (= up),
//   component "unet", "text_encoder" or "text_encoder_2"; alpha in the metadata key
//   "lora_adapter_metadata" (JSON: "<component>.lora_alpha", "<component>.alpha_pattern", ...),
//   as diffusers >= 0.34 writes it. Read also: "<component>.<path>.alpha" keys (what diffusers
//   makes of kohya alphas), the older ".lora.down/.lora.up", ".lora_linear_layer.down/.up" and
//   attention-processor "<attn>.processor.to_q_lora.down" spellings, and keys with no component
//   prefix as UNet keys. Without any alpha, alpha = rank (PEFT's scale 1).
// Both: metadata "likeness_lora_rank", "likeness_lora_alpha", "likeness_lora_targets" (JSON
// per component) and, when known, "likeness_base_model_hash".
//
// Reading rejects, with INVALID_ARGUMENT naming the key: DoRA (dora_scale,
// lora_magnitude_vector) and LyCORIS kinds (LoHa hada_*, LoKr lokr_*, lora_mid, OFT, IA3, GLoRA,
// full diff, norms), a down without its up (or the reverse), a rank that differs between down
// and up, a shape that does not fit the layer, an unknown key kind, and a file that mixes the
// two formats. Module names that match no layer are returned in `unmatched` (the caller
// decides; see LoraLoadOptions in lora_network.h).
#ifndef LIKENESS_WORKER_LORA_LORA_FILE_H_
#define LIKENESS_WORKER_LORA_LORA_FILE_H_

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/lora/lora_layer_index.h"
#include "worker/lora/lora_targets.h"

namespace likeness::lora {

enum class LoraFileFormat { kKohya, kPeft };
const char* FormatName(LoraFileFormat format);  // "kohya", "peft"

// ss_base_model_version sd-scripts writes for SDXL (library/sdxl_model_util.py).
inline constexpr char kKohyaSdxlBaseModelVersion[] = "sdxl_base_v1-0";
// ss_network_module of a plain LoRA (sd-scripts networks/lora.py).
inline constexpr char kKohyaNetworkModule[] = "networks.lora";
// diffusers' LORA_ADAPTER_METADATA_KEY (loaders/lora_base.py).
inline constexpr char kPeftAdapterMetadataKey[] = "lora_adapter_metadata";
inline constexpr char kMetaRank[] = "likeness_lora_rank";
inline constexpr char kMetaAlpha[] = "likeness_lora_alpha";
inline constexpr char kMetaTargets[] = "likeness_lora_targets";
inline constexpr char kMetaBaseModelHash[] = "likeness_base_model_hash";

// One module's weights, resolved to a layer of the model.
struct LoraModuleWeights {
  const LoraLayer* layer = nullptr;
  std::string name;        // the file's name for it (kohya lora name, or PEFT "unet.<path>")
  torch::Tensor down, up;  // reshaped to the layer's DownShape/UpShape; dtype as stored
  double alpha = 0.0;      // the file's alpha, or the rank where it has none
};

struct LoraFileContents {
  LoraFileFormat format = LoraFileFormat::kKohya;
  std::vector<LoraModuleWeights> modules;  // in the index's layer order
  std::vector<std::string> unmatched;      // the file's module names no layer has
  std::map<std::string, std::string> metadata;
};

// Opens `path`, detects the format and resolves every module against `index`. Tensors are CPU
// views of the mapped file (they keep the mapping alive).
absl::StatusOr<LoraFileContents> ReadLoraFile(const std::string& path, const LoraLayerIndex& index);

// What a network knows about itself, for the metadata of a written file.
struct LoraFileInfo {
  int64_t rank = 0;    // the most common rank
  double alpha = 0.0;  // the most common alpha
  double dropout = 0.0;
  LoraTargets targets;          // patterns (trained) or module paths (loaded)
  std::string base_model_hash;  // sha256 of the base checkpoint; written when not empty
  std::string base_model_name;  // ss_sd_model_name; written when not empty
  std::string title;            // ss_output_name / modelspec.title; written when not empty
  std::map<std::string, std::string> extra;  // added last (overrides)
};

// Writes `modules` (LoraModuleWeights::name is ignored; names come from the layers) atomically.
// `dtype`: the stored dtype of down/up (alphas are always float32, so they stay exact).
absl::Status WriteLoraFile(const std::string& path, LoraFileFormat format,
                           const std::vector<LoraModuleWeights>& modules, const LoraFileInfo& info,
                           std::optional<torch::Dtype> dtype = std::nullopt);

// The metadata WriteLoraFile stores (exposed for tests and `likeness inspect`).
std::map<std::string, std::string> LoraFileMetadata(LoraFileFormat format,
                                                    const std::vector<LoraModuleWeights>& modules,
                                                    const LoraFileInfo& info);

}  // namespace likeness::lora

#endif  // LIKENESS_WORKER_LORA_LORA_FILE_H_

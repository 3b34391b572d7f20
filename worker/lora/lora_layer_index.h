// Every LoRA-able layer (Linear or Conv2d) of an SDXL bundle, with the names LoRA files give it.
//
// Names per layer:
//   * path: the module path inside its component, diffusers/transformers spelling
//     ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"); PEFT files use
//     "<component>.<path>".
//   * kohya_name: what sd-scripts writes for SDXL. It names modules by the model it trains,
//     whose UNet is the ORIGINAL (SGM/ldm) one (library/sdxl_original_unet.py), and whose text
//     encoders are transformers' CLIP models; dots become underscores (networks/lora.py):
//       lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q
//       lora_te1_text_model_encoder_layers_0_self_attn_q_proj
//     The UNet's SGM path comes from the checkpoint rename table (sgm_rename_table.h), the one
//     table single-file loading uses, instantiated for the UNet's detected structure.
//   * kohya_diffusers_name: the UNet layer under its diffusers path, as older kohya files and
//     SD1.x-era tools spell SDXL LoRAs (lora_unet_down_blocks_1_attentions_0_..., which
//     sd-scripts' convert_diffusers_to_sai_if_needed also accepts). Empty for text encoders
//     (their two spellings coincide), and for a UNet layer the rename table does not name
//     (then kohya_name keeps the diffusers spelling; no SDXL layer is such).
// Kohya names are not reversible (underscores are ambiguous), so files are resolved by looking
// names up here, the way sd-scripts does it: build the names from the model, then match.
//
// Order: components in kLoraComponents order, then each component's named_modules() order
// (depth-first, registration order). It depends only on the model's configs, so it is the same
// in every process that builds the same model.
#ifndef LIKENESS_WORKER_LORA_LORA_LAYER_INDEX_H_
#define LIKENESS_WORKER_LORA_LORA_LAYER_INDEX_H_

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/lora/lora_adapter.h"
#include "worker/lora/lora_targets.h"
#include "worker/model/layers.h"
#include "worker/model/sdxl/sdxl_models.h"

namespace likeness::lora {

struct LoraLayer {
  LoraComponent component = LoraComponent::kUnet;
  std::string path;
  std::string kohya_name;
  std::string kohya_diffusers_name;
  // The layer itself; the shared_ptr keeps it alive while an adapter refers to it. Exactly one
  // of linear/conv is set.
  std::shared_ptr<torch::nn::Module> module;
  model::LinearImpl* linear = nullptr;
  model::Conv2dImpl* conv = nullptr;

  LoraLayerShape Shape() const;
  std::vector<std::shared_ptr<model::LayerAdapter>>& adapters() const;
  torch::Tensor& weight() const;
  // "unet.<path>": the layer's name in messages and PEFT keys.
  std::string QualifiedName() const;
};

class LoraLayerIndex {
 public:
  // Components that are null in `models` are skipped. INTERNAL when two layers get one kohya
  // name (a model these names cannot describe).
  static absl::StatusOr<LoraLayerIndex> Build(model::SdxlModels& models);

  // An index of exactly `layers` (a network's own layers), in their order.
  static absl::StatusOr<LoraLayerIndex> FromLayers(std::vector<LoraLayer> layers);

  const std::vector<LoraLayer>& layers() const { return layers_; }
  // By kohya name, either spelling (without the ".lora_down.weight" suffix); nullptr if none.
  const LoraLayer* FindKohya(absl::string_view lora_name) const;
  // By component and module path; nullptr if none.
  const LoraLayer* Find(LoraComponent component, absl::string_view path) const;
  // Whether `component` exists in the bundle this index was built from.
  bool HasComponent(LoraComponent component) const;

 private:
  absl::Status Add(LoraLayer layer);

  std::vector<LoraLayer> layers_;
  std::map<std::string, size_t> by_kohya_;
  std::map<std::string, size_t> by_path_;  // "<component>.<path>"
  std::vector<LoraComponent> components_;
};

}  // namespace likeness::lora

#endif  // LIKENESS_WORKER_LORA_LORA_LAYER_INDEX_H_

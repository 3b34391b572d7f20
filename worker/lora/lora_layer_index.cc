#include "worker/lora/lora_layer_index.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/sgm_rename_table.h"
#include "worker/model/checkpoint/sgm_structure.h"
#include "worker/model/state_dict.h"

namespace likeness::lora {
namespace {

constexpr absl::string_view kWeightSuffix = ".weight";

std::string KohyaName(LoraComponent component, absl::string_view path) {
  return absl::StrReplaceAll(absl::StrCat(KohyaPrefix(component), ".", path), {{".", "_"}});
}

// diffusers module path -> SGM module path, for every layer of the UNet the rename table names
// with a plain copy (all Linear and Conv2d layers of an SDXL UNet).
absl::StatusOr<std::map<std::string, std::string>> UnetSgmPaths(torch::nn::Module& unet) {
  const model::StateDict names = model::ModuleStateDict(unet);
  LIKENESS_ASSIGN_OR_RETURN(
      model::checkpoint::Structure structure,
      model::checkpoint::DetectDiffusersStructure(model::checkpoint::Naming::kUnet, names, "unet"));
  LIKENESS_ASSIGN_OR_RETURN(
      std::vector<model::checkpoint::NameRule> rules,
      model::checkpoint::InstantiateRules(model::checkpoint::Naming::kUnet, structure));
  std::map<std::string, std::string> paths;
  for (const model::checkpoint::NameRule& rule : rules) {
    if (rule.op != model::checkpoint::TensorOp::kCopy || rule.diffusers.size() != 1) continue;
    const std::string& diffusers = rule.diffusers[0];
    if (!absl::EndsWith(diffusers, kWeightSuffix) || !absl::EndsWith(rule.sgm, kWeightSuffix))
      continue;
    paths.emplace(diffusers.substr(0, diffusers.size() - kWeightSuffix.size()),
                  rule.sgm.substr(0, rule.sgm.size() - kWeightSuffix.size()));
  }
  return paths;
}

torch::nn::Module* ComponentModule(model::SdxlModels& models, LoraComponent component) {
  return models.Component(ComponentName(component));
}

}  // namespace

LoraLayerShape LoraLayer::Shape() const {
  return linear != nullptr ? LoraLayerShape::Of(*linear) : LoraLayerShape::Of(*conv);
}

std::vector<std::shared_ptr<model::LayerAdapter>>& LoraLayer::adapters() const {
  return linear != nullptr ? linear->adapters : conv->adapters;
}

torch::Tensor& LoraLayer::weight() const {
  return linear != nullptr ? linear->weight : conv->weight;
}

std::string LoraLayer::QualifiedName() const {
  return absl::StrCat(ComponentName(component), ".", path);
}

absl::StatusOr<LoraLayerIndex> LoraLayerIndex::Build(model::SdxlModels& models) {
  LoraLayerIndex index;
  for (LoraComponent component : kLoraComponents) {
    torch::nn::Module* root = ComponentModule(models, component);
    if (root == nullptr) continue;
    index.components_.push_back(component);
    // A UNet the rename table cannot describe keeps the diffusers spelling for kohya names
    // (which sd-scripts also reads); every SDXL UNet has SGM names (tests/lora check it).
    std::map<std::string, std::string> sgm_paths;
    if (component == LoraComponent::kUnet) {
      absl::StatusOr<std::map<std::string, std::string>> paths = UnetSgmPaths(*root);
      if (paths.ok()) sgm_paths = *std::move(paths);
    }
    for (const auto& item : root->named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
      LoraLayer layer;
      layer.component = component;
      layer.path = item.key();
      layer.module = item.value();
      layer.linear = dynamic_cast<model::LinearImpl*>(layer.module.get());
      layer.conv =
          layer.linear == nullptr ? dynamic_cast<model::Conv2dImpl*>(layer.module.get()) : nullptr;
      if (layer.linear == nullptr && layer.conv == nullptr) continue;
      layer.kohya_name = KohyaName(component, layer.path);
      if (auto it = sgm_paths.find(layer.path); it != sgm_paths.end()) {
        layer.kohya_diffusers_name = layer.kohya_name;
        layer.kohya_name = KohyaName(component, it->second);
      }
      LIKENESS_RETURN_IF_ERROR(index.Add(std::move(layer)));
    }
  }
  return index;
}

absl::StatusOr<LoraLayerIndex> LoraLayerIndex::FromLayers(std::vector<LoraLayer> layers) {
  LoraLayerIndex index;
  for (LoraLayer& layer : layers) {
    if (!index.HasComponent(layer.component)) index.components_.push_back(layer.component);
    LIKENESS_RETURN_IF_ERROR(index.Add(std::move(layer)));
  }
  return index;
}

absl::Status LoraLayerIndex::Add(LoraLayer layer) {
  const size_t position = layers_.size();
  for (const std::string* name : {&layer.kohya_name, &layer.kohya_diffusers_name}) {
    if (name->empty()) continue;
    if (!by_kohya_.emplace(*name, position).second) {
      return absl::InternalError(absl::StrCat("two layers share the kohya name ", *name));
    }
  }
  if (!by_path_.emplace(layer.QualifiedName(), position).second) {
    return absl::InternalError(absl::StrCat("two layers share the name ", layer.QualifiedName()));
  }
  layers_.push_back(std::move(layer));
  return absl::OkStatus();
}

const LoraLayer* LoraLayerIndex::FindKohya(absl::string_view lora_name) const {
  auto it = by_kohya_.find(std::string(lora_name));
  return it == by_kohya_.end() ? nullptr : &layers_[it->second];
}

const LoraLayer* LoraLayerIndex::Find(LoraComponent component, absl::string_view path) const {
  auto it = by_path_.find(absl::StrCat(ComponentName(component), ".", path));
  return it == by_path_.end() ? nullptr : &layers_[it->second];
}

bool LoraLayerIndex::HasComponent(LoraComponent component) const {
  return std::find(components_.begin(), components_.end(), component) != components_.end();
}

}  // namespace likeness::lora

// The kohya (sd-scripts networks.lora) LoRA format: reading and writing (lora_file.h).
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/lora/lora_file_internal.h"

namespace likeness::lora::internal {
namespace {

constexpr absl::string_view kDownSuffix = ".lora_down.weight";
constexpr absl::string_view kUpSuffix = ".lora_up.weight";
constexpr absl::string_view kAlphaSuffix = ".alpha";

// Kohya prefixes as sd-scripts writes them for SDXL (LoRANetwork.LORA_PREFIX_*), and SD1.x's
// single-encoder "lora_te_", read as the first encoder (CLIP-L in both), as diffusers does.
constexpr absl::string_view kKohyaPrefixes[] = {"lora_unet_", "lora_te1_", "lora_te2_", "lora_te_"};
constexpr absl::string_view kSd1TextPrefix = "lora_te_";
constexpr absl::string_view kSdxlTextPrefix = "lora_te1_";

// modelspec (Stability AI's ModelSpec, as sd-scripts' library/sai_model_spec.py fills it for an
// SDXL LoRA: architecture + "/lora", implementation = generative-models for SDXL LoRA).
constexpr char kModelSpecVersion[] = "1.0.0";
constexpr char kModelSpecArchitecture[] = "stable-diffusion-xl-v1-base/lora";
constexpr char kModelSpecImplementation[] = "https://github.com/Stability-AI/generative-models";

std::string LookupName(absl::string_view lora_name) {
  if (absl::StartsWith(lora_name, kSd1TextPrefix)) {
    return absl::StrCat(kSdxlTextPrefix, lora_name.substr(kSd1TextPrefix.size()));
  }
  return std::string(lora_name);
}

}  // namespace

bool IsKohyaKey(absl::string_view key) {
  for (absl::string_view prefix : kKohyaPrefixes) {
    if (absl::StartsWith(key, prefix)) return true;
  }
  return false;
}

absl::Status ParseKohya(const safetensors::SafetensorsFile& file, const LoraLayerIndex& index,
                        LoraFileContents* out) {
  const std::string& path = file.path();
  // lora name -> its keys; std::map so errors and `unmatched` come in name order.
  std::map<std::string, PendingModule> pending;
  for (const std::string& key : file.Names()) {
    const size_t dot = key.find('.');
    if (dot == std::string::npos || !IsKohyaKey(key)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": key '", key,
          "' is not a kohya LoRA key (<lora_unet_|lora_te1_|lora_te2_ name>.lora_down.weight, "
          ".lora_up.weight or .alpha)"));
    }
    const std::string name = key.substr(0, dot);
    const absl::string_view suffix = absl::string_view(key).substr(dot);
    PendingModule& module = pending[name];
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor tensor, file.Get(key));
    if (suffix == kDownSuffix) {
      module.down = tensor;
      module.down_key = key;
    } else if (suffix == kUpSuffix) {
      module.up = tensor;
      module.up_key = key;
    } else if (suffix == kAlphaSuffix) {
      LIKENESS_ASSIGN_OR_RETURN(module.alpha, ScalarValue(path, key, tensor));
      module.alpha_key = key;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": key '", key, "' has the unknown kind '", suffix.substr(1),
                       "' (a kohya LoRA has lora_down.weight, lora_up.weight and alpha)"));
    }
  }
  std::map<const LoraLayer*, LoraModuleWeights> resolved;
  for (auto& [name, module] : pending) {
    LIKENESS_RETURN_IF_ERROR(CheckComplete(path, name, module, kDownSuffix, kUpSuffix));
    const LoraLayer* layer = index.FindKohya(LookupName(name));
    if (layer == nullptr) {
      out->unmatched.push_back(name);
      continue;
    }
    if (resolved.count(layer) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", resolved[layer].name, " and ",
                                                     name, " both name ", layer->QualifiedName()));
    }
    LIKENESS_RETURN_IF_ERROR(FitModule(path, name, *layer, std::move(module), &resolved[layer]));
  }
  // In the index's layer order.
  for (const LoraLayer& layer : index.layers()) {
    if (auto it = resolved.find(&layer); it != resolved.end()) out->modules.push_back(it->second);
  }
  return absl::OkStatus();
}

safetensors::NamedTensors KohyaTensors(const std::vector<LoraModuleWeights>& modules,
                                       std::optional<torch::Dtype> dtype) {
  safetensors::NamedTensors tensors;
  for (const LoraModuleWeights& m : modules) {
    const std::string& name = m.layer->kohya_name;
    tensors.emplace_back(absl::StrCat(name, kDownSuffix), StoredTensor(m.down, dtype));
    tensors.emplace_back(absl::StrCat(name, kUpSuffix), StoredTensor(m.up, dtype));
    // float32 whatever the weights' dtype: a fp16 alpha would round values such as 0.1.
    tensors.emplace_back(absl::StrCat(name, kAlphaSuffix),
                         torch::tensor(static_cast<float>(m.alpha), torch::kFloat32));
  }
  return tensors;
}

std::map<std::string, std::string> KohyaMetadata(const std::vector<LoraModuleWeights>& modules,
                                                 const LoraFileInfo& info) {
  // sd-scripts stores every value with str(): numbers as Python prints them, None, True/False.
  std::map<std::string, std::string> metadata;
  metadata["ss_network_module"] = kKohyaNetworkModule;
  metadata["ss_network_dim"] = absl::StrCat(info.rank);
  metadata["ss_network_alpha"] = PythonFloat(info.alpha);
  metadata["ss_network_dropout"] = info.dropout > 0.0 ? PythonFloat(info.dropout) : "None";
  metadata["ss_base_model_version"] = kKohyaSdxlBaseModelVersion;
  metadata["ss_v2"] = "False";
  // kohya's LoCon: conv_dim/conv_alpha in ss_network_args, as strings (from "conv_dim=4").
  for (const LoraModuleWeights& m : modules) {
    if (m.layer->Shape().kind == LoraLayerKind::kConv2d && m.layer->Shape().kernel > 1) {
      nlohmann::json args = {{"conv_dim", absl::StrCat(m.down.size(0))},
                             {"conv_alpha", PythonFloat(m.alpha)}};
      metadata["ss_network_args"] = args.dump();
      break;
    }
  }
  if (!info.title.empty()) metadata["ss_output_name"] = info.title;
  if (!info.base_model_name.empty()) metadata["ss_sd_model_name"] = info.base_model_name;
  if (!info.base_model_hash.empty()) metadata["ss_new_sd_model_hash"] = info.base_model_hash;
  metadata["modelspec.sai_model_spec"] = kModelSpecVersion;
  metadata["modelspec.architecture"] = kModelSpecArchitecture;
  metadata["modelspec.implementation"] = kModelSpecImplementation;
  if (!info.title.empty()) metadata["modelspec.title"] = info.title;
  return metadata;
}

}  // namespace likeness::lora::internal

// The PEFT / diffusers LoRA format: reading (with the older diffusers spellings) and writing
// (lora_file.h).
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/lora/lora_file_internal.h"

namespace likeness::lora::internal {
namespace {

enum class Role { kDown, kUp, kAlpha };

// One spelling of a LoRA's two halves.
struct Spelling {
  const char* down;
  const char* up;
  // The attention-processor spelling "<attn>.processor.to_q_lora.down.weight": the stem names
  // the projection by its processor attribute (to_q/to_k/to_v/to_out), not by its module path.
  bool processor_form;
};

// From diffusers' utils/state_dict_utils.py: PEFT lora_A/lora_B, diffusers .lora.down/.up,
// .lora_linear_layer.down/.up and the old to_q_lora attention processors. No suffix ends
// another ("_lora.down" and ".lora.down" differ before "lora"), so the order does not matter.
constexpr Spelling kSpellings[] = {
    {".lora_A.weight", ".lora_B.weight", false},
    {".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight", false},
    {"_lora.down.weight", "_lora.up.weight", true},
    {".lora.down.weight", ".lora.up.weight", false},
};
constexpr absl::string_view kAlphaSuffix = ".alpha";

// Processor attribute -> module name, per component (UNet Attention vs CLIPAttention), as
// diffusers' UNET_TO_DIFFUSERS / DIFFUSERS_OLD_TO_PEFT tables map them.
struct ProcessorName {
  const char* processor;
  const char* unet;
  const char* text;
};
constexpr ProcessorName kProcessorNames[] = {
    {"to_q", "to_q", "q_proj"},
    {"to_k", "to_k", "k_proj"},
    {"to_v", "to_v", "v_proj"},
    {"to_out", "to_out.0", "out_proj"},
};

constexpr absl::string_view kProcessorSegment = ".processor";
constexpr char kPeftFormatKey[] = "format";
constexpr char kPeftFormatValue[] = "pt";

// Component prefixes, the more specific first ("text_encoder_2." before "text_encoder.").
constexpr std::pair<absl::string_view, LoraComponent> kPrefixes[] = {
    {"text_encoder_2.", LoraComponent::kTextEncoder2},
    {"text_encoder.", LoraComponent::kTextEncoder},
    {"unet.", LoraComponent::kUnet},
};

struct ParsedKey {
  LoraComponent component = LoraComponent::kUnet;
  std::string path;  // module path inside the component
  Role role = Role::kDown;
  const Spelling* spelling = nullptr;  // null for alpha
};

// `stem` (the key without component prefix and suffix) -> module path; false for a processor
// attribute that is not a known projection.
bool StemToPath(LoraComponent component, bool processor_form, std::string stem, std::string* path) {
  stem = absl::StrReplaceAll(stem, {{absl::StrCat(kProcessorSegment, "."), "."}});
  if (processor_form) {
    const size_t dot = stem.rfind('.');
    const std::string parent = dot == std::string::npos ? "" : stem.substr(0, dot + 1);
    const std::string attribute = stem.substr(dot == std::string::npos ? 0 : dot + 1);
    bool known = false;
    for (const ProcessorName& n : kProcessorNames) {
      if (attribute == n.processor) {
        stem = parent + (component == LoraComponent::kUnet ? n.unet : n.text);
        known = true;
      }
    }
    if (!known) return false;
  }
  *path = std::move(stem);
  return true;
}

bool ParseKey(absl::string_view key, ParsedKey* parsed) {
  absl::string_view rest = key;
  parsed->component = LoraComponent::kUnet;  // Unprefixed keys: UNet attention processors.
  for (const auto& [prefix, component] : kPrefixes) {
    if (absl::StartsWith(rest, prefix)) {
      parsed->component = component;
      rest.remove_prefix(prefix.size());
      break;
    }
  }
  const auto strip = [&](absl::string_view suffix) {
    return std::string(rest.substr(0, rest.size() - suffix.size()));
  };
  for (const Spelling& spelling : kSpellings) {
    for (Role role : {Role::kDown, Role::kUp}) {
      const absl::string_view suffix = role == Role::kDown ? spelling.down : spelling.up;
      if (!absl::EndsWith(rest, suffix)) continue;
      parsed->role = role;
      parsed->spelling = &spelling;
      return StemToPath(parsed->component, spelling.processor_form, strip(suffix), &parsed->path);
    }
  }
  if (absl::EndsWith(rest, kAlphaSuffix)) {
    parsed->role = Role::kAlpha;
    parsed->spelling = nullptr;
    return StemToPath(parsed->component, false, strip(kAlphaSuffix), &parsed->path);
  }
  return false;
}

// The adapter config diffusers stores per component ("unet.lora_alpha", "unet.alpha_pattern").
struct PeftConfig {
  std::optional<double> lora_alpha;
  std::vector<std::pair<std::string, double>> alpha_pattern;
};

absl::StatusOr<std::map<LoraComponent, PeftConfig>> ParseAdapterMetadata(
    const safetensors::SafetensorsFile& file) {
  std::map<LoraComponent, PeftConfig> configs;
  auto it = file.metadata().find(kPeftAdapterMetadataKey);
  if (it == file.metadata().end()) return configs;
  const nlohmann::json json =
      nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  const auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path(), ": metadata ", kPeftAdapterMetadataKey, " ", what));
  };
  if (!json.is_object()) return bad("is not a JSON object");
  for (LoraComponent component : kLoraComponents) {
    PeftConfig& config = configs[component];
    const std::string prefix = absl::StrCat(ComponentName(component), ".");
    if (auto a = json.find(prefix + "lora_alpha"); a != json.end()) {
      if (!a->is_number()) return bad(absl::StrCat(prefix, "lora_alpha is not a number"));
      config.lora_alpha = a->get<double>();
    }
    if (auto p = json.find(prefix + "alpha_pattern"); p != json.end() && !p->is_null()) {
      if (!p->is_object()) return bad(absl::StrCat(prefix, "alpha_pattern is not an object"));
      for (const auto& [pattern, value] : p->items()) {
        if (!value.is_number()) {
          return bad(absl::StrCat(prefix, "alpha_pattern[\"", pattern, "\"] is not a number"));
        }
        config.alpha_pattern.emplace_back(pattern, value.get<double>());
      }
    }
  }
  return configs;
}

std::optional<double> ConfiguredAlpha(const PeftConfig& config, const std::string& path) {
  for (const auto& [pattern, alpha] : config.alpha_pattern) {
    if (MatchesTarget(path, pattern)) return alpha;
  }
  return config.lora_alpha;
}

// The value most modules have (ties: the smallest), and the modules that differ.
template <typename T, typename Get>
std::pair<T, std::map<std::string, T>> CommonAndPattern(
    const std::vector<const LoraModuleWeights*>& modules, Get get) {
  std::map<T, int> counts;
  for (const LoraModuleWeights* m : modules) ++counts[get(*m)];
  T common{};
  int best = -1;
  for (const auto& [value, count] : counts) {
    if (count > best) std::tie(common, best) = std::make_pair(value, count);
  }
  std::map<std::string, T> pattern;
  for (const LoraModuleWeights* m : modules) {
    if (get(*m) != common) pattern[m->layer->path] = get(*m);
  }
  return {common, pattern};
}

}  // namespace

bool IsPeftKey(absl::string_view key) {
  ParsedKey parsed;
  return ParseKey(key, &parsed) && parsed.role != Role::kAlpha;
}

absl::Status ParsePeft(const safetensors::SafetensorsFile& file, const LoraLayerIndex& index,
                       LoraFileContents* out) {
  const std::string& path = file.path();
  LIKENESS_ASSIGN_OR_RETURN(auto configs, ParseAdapterMetadata(file));
  // (component, module path) -> keys, in name order.
  std::map<std::pair<LoraComponent, std::string>, PendingModule> pending;
  std::map<std::pair<LoraComponent, std::string>, const Spelling*> spellings;
  for (const std::string& key : file.Names()) {
    ParsedKey parsed;
    if (!ParseKey(key, &parsed)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": key '", key,
          "' is not a PEFT/diffusers LoRA key (<unet|text_encoder|text_encoder_2>.<module>"
          ".lora_A.weight, .lora_B.weight or .alpha)"));
    }
    const auto id = std::make_pair(parsed.component, parsed.path);
    PendingModule& module = pending[id];
    if (parsed.spelling != nullptr) spellings[id] = parsed.spelling;
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor tensor, file.Get(key));
    switch (parsed.role) {
      case Role::kDown:
        module.down = tensor;
        module.down_key = key;
        break;
      case Role::kUp:
        module.up = tensor;
        module.up_key = key;
        break;
      case Role::kAlpha:
        LIKENESS_ASSIGN_OR_RETURN(module.alpha, ScalarValue(path, key, tensor));
        module.alpha_key = key;
        break;
    }
  }
  std::map<const LoraLayer*, LoraModuleWeights> resolved;
  for (auto& [id, module] : pending) {
    const auto& [component, module_path] = id;
    const std::string name = absl::StrCat(ComponentName(component), ".", module_path);
    // The missing half is named in the spelling of the half that is present.
    const Spelling* spelling = spellings.count(id) > 0 ? spellings[id] : &kSpellings[0];
    LIKENESS_RETURN_IF_ERROR(CheckComplete(path, name, module, spelling->down, spelling->up));
    const LoraLayer* layer = index.Find(component, module_path);
    if (layer == nullptr) {
      out->unmatched.push_back(name);
      continue;
    }
    if (!module.alpha.has_value()) module.alpha = ConfiguredAlpha(configs[component], module_path);
    LIKENESS_RETURN_IF_ERROR(FitModule(path, name, *layer, std::move(module), &resolved[layer]));
  }
  for (const LoraLayer& layer : index.layers()) {
    if (auto it = resolved.find(&layer); it != resolved.end()) out->modules.push_back(it->second);
  }
  return absl::OkStatus();
}

safetensors::NamedTensors PeftTensors(const std::vector<LoraModuleWeights>& modules,
                                      std::optional<torch::Dtype> dtype) {
  safetensors::NamedTensors tensors;
  for (const LoraModuleWeights& m : modules) {
    const std::string name = m.layer->QualifiedName();
    tensors.emplace_back(absl::StrCat(name, ".lora_A.weight"), StoredTensor(m.down, dtype));
    tensors.emplace_back(absl::StrCat(name, ".lora_B.weight"), StoredTensor(m.up, dtype));
  }
  return tensors;
}

std::map<std::string, std::string> PeftMetadata(const std::vector<LoraModuleWeights>& modules,
                                                const LoraFileInfo& info) {
  // diffusers passes these per-component objects to peft.LoraConfig(**kwargs); the keys are
  // the ones its own get_peft_kwargs produces, plus lora_dropout, so any LoraConfig accepts them.
  nlohmann::json adapter = nlohmann::json::object();
  for (LoraComponent component : kLoraComponents) {
    std::vector<const LoraModuleWeights*> mine;
    for (const LoraModuleWeights& m : modules) {
      if (m.layer->component == component) mine.push_back(&m);
    }
    if (mine.empty()) continue;
    const std::string prefix = absl::StrCat(ComponentName(component), ".");
    const auto [rank, rank_pattern] =
        CommonAndPattern<int64_t>(mine, [](const LoraModuleWeights& m) { return m.down.size(0); });
    const auto [alpha, alpha_pattern] =
        CommonAndPattern<double>(mine, [](const LoraModuleWeights& m) { return m.alpha; });
    std::vector<std::string> targets = info.targets.Of(component);
    if (targets.empty()) {
      for (const LoraModuleWeights* m : mine) targets.push_back(m->layer->path);
    }
    adapter[prefix + "r"] = rank;
    adapter[prefix + "lora_alpha"] = alpha;
    adapter[prefix + "rank_pattern"] = rank_pattern;
    adapter[prefix + "alpha_pattern"] = alpha_pattern;
    adapter[prefix + "target_modules"] = targets;
    adapter[prefix + "lora_dropout"] = info.dropout;
    adapter[prefix + "use_dora"] = false;
    adapter[prefix + "lora_bias"] = false;
  }
  std::map<std::string, std::string> metadata;
  metadata[kPeftFormatKey] = kPeftFormatValue;
  // diffusers writes json.dumps(..., indent=2, sort_keys=True); nlohmann sorts object keys too.
  metadata[kPeftAdapterMetadataKey] = adapter.dump(2);
  return metadata;
}

}  // namespace likeness::lora::internal

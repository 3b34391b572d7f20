#include "worker/model/checkpoint/sgm_convert.h"

#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/safetensors/safetensors_file.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/config_detect.h"
#include "worker/model/checkpoint/sgm_structure.h"

namespace likeness::model::checkpoint {
namespace {

using nlohmann::json;

constexpr int kQkvParts = 3;

std::string ShapeString(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes().vec(), ", "), "]");
}

// The SGM tensor -> the diffusers tensor(s), as views.
absl::StatusOr<std::vector<torch::Tensor>> Forward(TensorOp op, const torch::Tensor& t,
                                                   absl::string_view name) {
  auto bad_shape = [&](absl::string_view want) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' has shape ", ShapeString(t), ", expected ", want));
  };
  switch (op) {
    case TensorOp::kCopy:
      return std::vector<torch::Tensor>{t};
    case TensorOp::kConv1x1ToLinear:
      // Some converters already store these as [C, C]; both forms load.
      if (t.dim() == 2) return std::vector<torch::Tensor>{t};
      if (t.dim() != 4 || t.size(2) != 1 || t.size(3) != 1) return bad_shape("[C, C, 1, 1]");
      return std::vector<torch::Tensor>{
          t.reshape({t.size(0), t.size(1)})};  // [C, C, 1, 1] -> [C, C]
    case TensorOp::kSplitQkv: {
      if (t.dim() < 1 || t.size(0) % kQkvParts != 0) return bad_shape("[3H, ...]");
      const int64_t h = t.size(0) / kQkvParts;
      // [3H, ...] -> q, k, v [H, ...], in that order along dim 0.
      return std::vector<torch::Tensor>{t.narrow(0, 0, h), t.narrow(0, h, h),
                                        t.narrow(0, 2 * h, h)};
    }
    case TensorOp::kTranspose:
      if (t.dim() != 2) return bad_shape("[H, P]");
      return std::vector<torch::Tensor>{t.t()};  // [H, P] -> [P, H]
  }
  return absl::InternalError("unknown tensor op");
}

// The diffusers tensor(s) -> the SGM tensor.
absl::StatusOr<torch::Tensor> Inverse(TensorOp op, const std::vector<torch::Tensor>& parts,
                                      absl::string_view name) {
  const torch::Tensor& t = parts[0];
  switch (op) {
    case TensorOp::kCopy:
      return t;
    case TensorOp::kConv1x1ToLinear:
      if (t.dim() != 2) break;
      return t.reshape({t.size(0), t.size(1), 1, 1});  // [C, C] -> [C, C, 1, 1]
    case TensorOp::kSplitQkv:
      if (parts.size() != kQkvParts || parts[1].sizes() != t.sizes() ||
          parts[2].sizes() != t.sizes())
        break;
      return torch::cat({parts[0], parts[1], parts[2]}, 0);  // q, k, v [H, ...] -> [3H, ...]
    case TensorOp::kTranspose:
      if (t.dim() != 2) break;
      return t.t();  // [P, H] -> [H, P]
  }
  return absl::InvalidArgumentError(absl::StrCat("the tensors for '", name, "' have shape ",
                                                 ShapeString(t),
                                                 " that its single-file form cannot take"));
}

const ComponentPrefix* MatchPrefix(absl::string_view name) {
  for (const ComponentPrefix& p : ComponentPrefixes()) {
    if (absl::StartsWith(name, p.prefix)) return &p;
  }
  return nullptr;
}

const ComponentPrefix& CanonicalPrefix(Component component) {
  for (const ComponentPrefix& p : ComponentPrefixes()) {
    if (p.component == component) return p;
  }
  return ComponentPrefixes().front();  // Unreachable: every component has a row.
}

void Report(const std::string& full_name, SdxlComponents& out) {
  (IsIgnoredTensor(full_name) ? out.ignored : out.unknown).push_back(full_name);
}

// Steps 2 and 3 of the header for one component.
absl::Status ConvertComponent(const ComponentPrefix& prefix, const StateDict& sgm,
                              absl::string_view source, StateDict& diffusers,
                              std::vector<std::string>& missing, SdxlComponents& out) {
  const std::string where = absl::StrCat(source, ": ", prefix.prefix, "*");
  LIKENESS_ASSIGN_OR_RETURN(Structure structure, DetectSgmStructure(prefix.naming, sgm, where));
  LIKENESS_ASSIGN_OR_RETURN(std::vector<NameRule> rules,
                            InstantiateRules(prefix.naming, structure));
  std::set<std::string> consumed;
  for (const NameRule& rule : rules) {
    auto it = sgm.find(rule.sgm);
    if (it == sgm.end()) {
      if (!rule.optional) missing.push_back(absl::StrCat(prefix.prefix, rule.sgm));
      continue;
    }
    consumed.insert(rule.sgm);
    const std::string full_name = absl::StrCat(prefix.prefix, rule.sgm);
    absl::StatusOr<std::vector<torch::Tensor>> converted;
    try {
      converted = Forward(rule.op, it->second, full_name);
    } catch (const c10::Error& e) {
      converted = absl::InternalError(
          absl::StrCat("converting '", full_name, "': ", e.what_without_backtrace()));
    }
    if (!converted.ok())
      return absl::Status(converted.status().code(),
                          absl::StrCat(source, ": ", converted.status().message()));
    for (size_t i = 0; i < rule.diffusers.size(); ++i)
      diffusers[rule.diffusers[i]] = (*converted)[i];
  }
  for (const auto& [name, tensor] : sgm) {
    if (consumed.count(name) == 0) Report(absl::StrCat(prefix.prefix, name), out);
  }
  return absl::OkStatus();
}

absl::StatusOr<DetectedConfig> DetectConfig(Component component, const StateDict& sd,
                                            const char* hidden_act, const std::string& where,
                                            std::optional<int64_t> pooled_dim) {
  switch (component) {
    case Component::kUnet:
      return DetectUnetConfig(sd, where, pooled_dim);
    case Component::kVae:
      return DetectVaeConfig(sd, where);
    case Component::kTextEncoder:
    case Component::kTextEncoder2:
      return DetectClipTextConfig(sd, hidden_act, where);
  }
  return absl::InternalError("unknown component");
}

// Step 5 of the header. text_encoder_2 goes first: its projection width tells the UNet's
// add-embedding layout.
absl::Status DetectConfigs(const std::map<Component, const ComponentPrefix*>& prefixes,
                           const json& override_config, absl::string_view source,
                           SdxlComponents& out) {
  if (!override_config.is_null() && !override_config.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the config override must be an object keyed by component"));
  }
  if (override_config.is_object()) {
    for (const auto& [key, value] : override_config.items()) {
      bool known = false;
      for (Component c : kAllComponents) known = known || key == ComponentName(c);
      if (!known) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": the config override names '", key,
                         "'; components are unet, vae, text_encoder, text_encoder_2"));
      }
    }
  }
  std::optional<int64_t> pooled_dim;
  for (Component c :
       {Component::kTextEncoder2, Component::kTextEncoder, Component::kVae, Component::kUnet}) {
    auto prefix = prefixes.find(c);
    if (prefix == prefixes.end()) continue;
    const std::string name(ComponentName(c));
    const std::string where = absl::StrCat(source, ": ", name);
    LIKENESS_ASSIGN_OR_RETURN(
        DetectedConfig detected,
        DetectConfig(c, out.Weights(c), prefix->second->hidden_act, where, pooled_dim));
    if (override_config.is_object() && override_config.contains(name)) {
      LIKENESS_RETURN_IF_ERROR(ApplyConfigOverride(override_config.at(name), where, detected));
    }
    LIKENESS_RETURN_IF_ERROR(CheckConfigComplete(detected, name, source));
    if (c == Component::kTextEncoder2 && detected.config.contains("projection_dim")) {
      pooled_dim = detected.config["projection_dim"].get<int64_t>();
    }
    out.Config(c) = std::move(detected.config);
  }
  return absl::OkStatus();
}

}  // namespace

StateDict& SdxlComponents::Weights(Component component) {
  return const_cast<StateDict&>(static_cast<const SdxlComponents*>(this)->Weights(component));
}

const StateDict& SdxlComponents::Weights(Component component) const {
  switch (component) {
    case Component::kUnet:
      return unet;
    case Component::kVae:
      return vae;
    case Component::kTextEncoder:
      return text_encoder;
    case Component::kTextEncoder2:
      return text_encoder_2;
  }
  return unet;
}

json& SdxlComponents::Config(Component component) {
  return const_cast<json&>(static_cast<const SdxlComponents*>(this)->Config(component));
}

const json& SdxlComponents::Config(Component component) const {
  switch (component) {
    case Component::kUnet:
      return unet_config;
    case Component::kVae:
      return vae_config;
    case Component::kTextEncoder:
      return text_encoder_config;
    case Component::kTextEncoder2:
      return text_encoder_2_config;
  }
  return unet_config;
}

absl::StatusOr<SdxlComponents> ConvertSingleFile(const StateDict& sgm,
                                                 absl::string_view source_name,
                                                 const json& config_override) {
  SdxlComponents out;
  std::map<Component, const ComponentPrefix*> prefixes;
  std::map<Component, StateDict> parts;
  for (const auto& [name, tensor] : sgm) {
    const ComponentPrefix* prefix = MatchPrefix(name);
    if (prefix == nullptr) {
      Report(name, out);
      continue;
    }
    auto [it, inserted] = prefixes.emplace(prefix->component, prefix);
    if (!inserted && it->second != prefix) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": both ", it->second->prefix,
                                                     "* and ", prefix->prefix, "* hold ",
                                                     ComponentName(prefix->component)));
    }
    parts[prefix->component][name.substr(std::strlen(prefix->prefix))] = tensor;
  }
  if (parts.count(Component::kUnet) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": no tensor named ",
                                                   CanonicalPrefix(Component::kUnet).prefix,
                                                   "*; not an SDXL single-file checkpoint"));
  }
  std::vector<std::string> missing;
  for (Component c : kAllComponents) {
    auto part = parts.find(c);
    if (part == parts.end()) {
      out.absent.emplace_back(ComponentName(c));
      continue;
    }
    LIKENESS_RETURN_IF_ERROR(
        ConvertComponent(*prefixes.at(c), part->second, source_name, out.Weights(c), missing, out));
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": ", missing.size(),
                     " tensor(s) the model needs are missing: ", JoinNamesForError(missing)));
  }
  LIKENESS_RETURN_IF_ERROR(DetectConfigs(prefixes, config_override, source_name, out));
  return out;
}

absl::StatusOr<SdxlComponents> LoadSingleFile(const std::string& path,
                                              const json& config_override) {
  LIKENESS_ASSIGN_OR_RETURN(std::shared_ptr<safetensors::SafetensorsFile> file,
                            safetensors::SafetensorsFile::Open(path));
  LIKENESS_ASSIGN_OR_RETURN(StateDict sgm, ReadStateDict(*file));
  return ConvertSingleFile(sgm, path, config_override);
}

absl::StatusOr<StateDict> ToSingleFile(const SdxlComponents& components,
                                       absl::string_view source_name) {
  StateDict out;
  std::vector<std::string> missing, unnamed;
  for (Component c : kAllComponents) {
    const StateDict& diffusers = components.Weights(c);
    if (diffusers.empty()) continue;
    const ComponentPrefix& prefix = CanonicalPrefix(c);
    const std::string where = absl::StrCat(source_name, ": ", ComponentName(c));
    LIKENESS_ASSIGN_OR_RETURN(Structure structure,
                              DetectDiffusersStructure(prefix.naming, diffusers, where));
    LIKENESS_ASSIGN_OR_RETURN(std::vector<NameRule> rules,
                              InstantiateRules(prefix.naming, structure));
    std::set<std::string> consumed;
    for (const NameRule& rule : rules) {
      std::vector<torch::Tensor> parts;
      for (const std::string& name : rule.diffusers) {
        auto it = diffusers.find(name);
        if (it == diffusers.end()) continue;
        parts.push_back(it->second);
        consumed.insert(name);
      }
      if (parts.size() != rule.diffusers.size()) {
        if (!parts.empty() || !rule.optional) {
          for (const std::string& name : rule.diffusers) {
            if (diffusers.count(name) == 0)
              missing.push_back(absl::StrCat(ComponentName(c), ".", name));
          }
        }
        continue;
      }
      absl::StatusOr<torch::Tensor> sgm;
      try {
        sgm = Inverse(rule.op, parts, rule.sgm);
      } catch (const c10::Error& e) {
        sgm = absl::InternalError(absl::StrCat("'", rule.sgm, "': ", e.what_without_backtrace()));
      }
      if (!sgm.ok())
        return absl::Status(sgm.status().code(), absl::StrCat(where, ": ", sgm.status().message()));
      out[absl::StrCat(prefix.prefix, rule.sgm)] = *std::move(sgm);
    }
    for (const auto& [name, tensor] : diffusers) {
      if (consumed.count(name) == 0) unnamed.push_back(absl::StrCat(ComponentName(c), ".", name));
    }
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": ", missing.size(), " tensor(s) are missing: ", JoinNamesForError(missing)));
  }
  if (!unnamed.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": ", unnamed.size(),
                     " tensor(s) have no single-file name: ", JoinNamesForError(unnamed)));
  }
  return out;
}

}  // namespace likeness::model::checkpoint

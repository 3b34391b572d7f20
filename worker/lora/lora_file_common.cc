// Helpers both LoRA formats share (lora_file_internal.h).
#include <cmath>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "worker/lora/lora_file_internal.h"

namespace likeness::lora::internal {
namespace {

enum class Where { kContains, kEndsWith };
struct UnsupportedKind {
  const char* marker;
  Where where;
  const char* what;
};

// Adapter kinds other tools write that this library does not implement. Their keys would
// otherwise be "unknown"; naming the kind tells the user what the file is. Key spellings from
// LyCORIS as ComfyUI's LoRA loader reads them, sd-scripts (dora_scale) and PEFT.
constexpr UnsupportedKind kUnsupportedKinds[] = {
    {".dora_scale", Where::kEndsWith, "DoRA (kohya dora_scale)"},
    {".lora_magnitude_vector", Where::kContains, "DoRA (PEFT lora_magnitude_vector)"},
    {".hada_", Where::kContains, "LyCORIS LoHa (hada_*)"},
    {".lokr_", Where::kContains, "LyCORIS LoKr (lokr_*)"},
    {".lora_mid.", Where::kContains, "LyCORIS LoCon with a Tucker core (lora_mid)"},
    {".oft_", Where::kContains, "LyCORIS OFT/BOFT (oft_*)"},
    {".on_input", Where::kEndsWith, "LyCORIS (IA)^3 (on_input)"},
    {".a1.weight", Where::kEndsWith, "LyCORIS GLoRA (a1/a2/b1/b2)"},
    {".a2.weight", Where::kEndsWith, "LyCORIS GLoRA (a1/a2/b1/b2)"},
    {".b1.weight", Where::kEndsWith, "LyCORIS GLoRA (a1/a2/b1/b2)"},
    {".b2.weight", Where::kEndsWith, "LyCORIS GLoRA (a1/a2/b1/b2)"},
    {".diff", Where::kEndsWith, "LyCORIS full weight difference (diff)"},
    {".diff_b", Where::kEndsWith, "LyCORIS full bias difference (diff_b)"},
    {".w_norm", Where::kEndsWith, "LyCORIS norm-layer training (w_norm/b_norm)"},
    {".b_norm", Where::kEndsWith, "LyCORIS norm-layer training (w_norm/b_norm)"},
    {".lora_embedding_A", Where::kContains, "PEFT embedding LoRA (lora_embedding_A/B)"},
    {".lora_embedding_B", Where::kContains, "PEFT embedding LoRA (lora_embedding_A/B)"},
    {".lora_B.bias", Where::kEndsWith, "PEFT LoRA with a bias (lora_bias)"},
};

// a and b equal once trailing size-1 dims past the second are dropped ([r, in, 1, 1] ~ [r, in]).
bool SameUpToTrailingOnes(std::vector<int64_t> a, std::vector<int64_t> b) {
  while (a.size() > 2 && a.back() == 1) a.pop_back();
  while (b.size() > 2 && b.back() == 1) b.pop_back();
  return a == b;
}

std::string Shape(c10::IntArrayRef sizes) {
  return absl::StrCat("[", absl::StrJoin(sizes, ", "), "]");
}

std::string Describe(const LoraLayer& layer) {
  const LoraLayerShape s = layer.Shape();
  if (s.kind == LoraLayerKind::kLinear) {
    return absl::StrCat(layer.QualifiedName(), " (Linear ", s.in, " -> ", s.out, ")");
  }
  return absl::StrCat(layer.QualifiedName(), " (Conv2d ", s.in, " -> ", s.out, ", kernel ",
                      s.kernel, ")");
}

}  // namespace

absl::Status CheckSupportedKey(absl::string_view path, absl::string_view key) {
  for (const UnsupportedKind& kind : kUnsupportedKinds) {
    const bool hit = kind.where == Where::kEndsWith ? absl::EndsWith(key, kind.marker)
                                                    : absl::StrContains(key, kind.marker);
    if (hit) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": key '", key, "' is ", kind.what,
                       ", which is not supported (only plain LoRA: lora_down/lora_up, "
                       "lora_A/lora_B)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckComplete(absl::string_view path, const std::string& name,
                           const PendingModule& pending, absl::string_view down_suffix,
                           absl::string_view up_suffix) {
  if (pending.down.defined() && !pending.up.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", pending.down_key, " has no matching ", name, up_suffix));
  }
  if (pending.up.defined() && !pending.down.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", pending.up_key, " has no matching ", name, down_suffix));
  }
  if (!pending.down.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", pending.alpha_key, " has no lora weights beside it"));
  }
  return absl::OkStatus();
}

absl::Status FitModule(absl::string_view path, const std::string& name, const LoraLayer& layer,
                       PendingModule pending, LoraModuleWeights* out) {
  torch::Tensor down = pending.down, up = pending.up;
  if (down.dim() < 2 || up.dim() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", pending.down_key, " ", Shape(down.sizes()), " / ", pending.up_key,
                     " ", Shape(up.sizes()), ": LoRA halves must have at least 2 dims"));
  }
  const int64_t rank = down.size(0);
  if (up.size(1) != rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": rank mismatch: ", pending.down_key, " ", Shape(down.sizes()), " has rank ", rank,
        " but ", pending.up_key, " ", Shape(up.sizes()), " has rank ", up.size(1)));
  }
  const LoraLayerShape shape = layer.Shape();
  const std::vector<int64_t> down_shape = shape.DownShape(rank);
  const std::vector<int64_t> up_shape = shape.UpShape(rank);
  if (down.sizes().vec() != down_shape) {
    if (!SameUpToTrailingOnes(down.sizes().vec(), down_shape)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", pending.down_key, " has shape ",
                                                     Shape(down.sizes()), " but ", Describe(layer),
                                                     " needs ", Shape(down_shape)));
    }
    down = down.reshape(down_shape);
  }
  if (up.sizes().vec() != up_shape) {
    if (!SameUpToTrailingOnes(up.sizes().vec(), up_shape)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", pending.up_key, " has shape ",
                                                     Shape(up.sizes()), " but ", Describe(layer),
                                                     " needs ", Shape(up_shape)));
    }
    up = up.reshape(up_shape);
  }
  out->layer = &layer;
  out->name = name;
  out->down = down;
  out->up = up;
  // sd-scripts: "if alpha == 0 or None, alpha is rank (no scaling)".
  out->alpha = pending.alpha.has_value() && *pending.alpha != 0.0 ? *pending.alpha
                                                                  : static_cast<double>(rank);
  return absl::OkStatus();
}

absl::StatusOr<double> ScalarValue(absl::string_view path, absl::string_view key,
                                   const torch::Tensor& tensor) {
  if (tensor.numel() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", key, " has shape ", Shape(tensor.sizes()), "; an alpha is a single number"));
  }
  return tensor.to(torch::kFloat64).item<double>();
}

std::string PythonFloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // repr() of an integral float below 1e16 keeps one decimal: 4.0.
  if (value == std::floor(value) && std::fabs(value) < 1e16) return absl::StrFormat("%.1f", value);
  // Otherwise the shortest %g that reads back exactly, as repr() does.
  for (int precision = 1; precision <= 17; ++precision) {
    std::string s = absl::StrFormat("%.*g", precision, value);
    if (std::strtod(s.c_str(), nullptr) == value) return s;
  }
  return absl::StrFormat("%.17g", value);
}

std::string TargetsJson(const LoraTargets& targets) {
  nlohmann::json json = nlohmann::json::object();
  for (LoraComponent component : kLoraComponents)
    json[ComponentName(component)] = targets.Of(component);
  return json.dump();
}

torch::Tensor StoredTensor(const torch::Tensor& tensor, std::optional<torch::Dtype> dtype) {
  torch::Tensor t = tensor.detach();
  if (dtype.has_value() && t.scalar_type() != *dtype) t = t.to(*dtype);
  return t;
}

void AddCommonMetadata(const LoraFileInfo& info, std::map<std::string, std::string>& metadata) {
  metadata[kMetaRank] = absl::StrCat(info.rank);
  metadata[kMetaAlpha] = PythonFloat(info.alpha);
  metadata[kMetaTargets] = TargetsJson(info.targets);
  if (!info.base_model_hash.empty()) metadata[kMetaBaseModelHash] = info.base_model_hash;
}

}  // namespace likeness::lora::internal

#include "worker/model/text/clip_text_config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace likeness::model {
namespace {

// transformers' model_type of CLIPTextConfig and of the full CLIPConfig that nests it.
constexpr char kTextModelType[] = "clip_text_model";
constexpr char kFullClipModelType[] = "clip";
constexpr char kTextConfigKey[] = "text_config";
// How much of an offending value an error message quotes.
constexpr size_t kMaxQuotedValueChars = 60;

std::string Quote(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > kMaxQuotedValueChars) text = text.substr(0, kMaxQuotedValueChars) + "...";
  return text;
}

absl::Status FieldError(absl::string_view field, absl::string_view want,
                        const nlohmann::json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat("CLIP text config field '", field, "': want ", want, ", got ", Quote(got)));
}

// Reads `field` into `out` when present; leaves the default otherwise.
absl::Status ReadInt(const nlohmann::json& json, const char* field, int64_t& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_number_integer()) return FieldError(field, "an integer", *it);
  out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadDouble(const nlohmann::json& json, const char* field, double& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_number()) return FieldError(field, "a number", *it);
  out = it->get<double>();
  return absl::OkStatus();
}

absl::StatusOr<ClipActivation> ParseActivation(const nlohmann::json& value) {
  if (value.is_string()) {
    const std::string name = value.get<std::string>();
    if (name == "quick_gelu") return ClipActivation::kQuickGelu;
    if (name == "gelu") return ClipActivation::kGelu;
    if (name == "gelu_new" || name == "gelu_pytorch_tanh") return ClipActivation::kGeluTanh;
  }
  return FieldError("hidden_act",
                    "one of \"quick_gelu\", \"gelu\", \"gelu_new\", \"gelu_pytorch_tanh\"", value);
}

}  // namespace

absl::string_view ClipActivationName(ClipActivation activation) {
  switch (activation) {
    case ClipActivation::kQuickGelu:
      return "quick_gelu";
    case ClipActivation::kGelu:
      return "gelu";
    case ClipActivation::kGeluTanh:
      return "gelu_pytorch_tanh";
  }
  return "unknown";
}

ClipTextConfig ClipTextConfig::SdxlClipL() {
  ClipTextConfig config;
  config.hidden_size = 768;
  config.intermediate_size = 3072;
  config.num_hidden_layers = 12;
  config.num_attention_heads = 12;
  config.hidden_act = ClipActivation::kQuickGelu;
  config.projection_dim = 768;
  config.bos_token_id = 0;
  config.eos_token_id = 2;
  config.pad_token_id = 1;
  return config;
}

ClipTextConfig ClipTextConfig::SdxlBigG() {
  ClipTextConfig config;
  config.hidden_size = 1280;
  config.intermediate_size = 5120;
  config.num_hidden_layers = 32;
  config.num_attention_heads = 20;
  config.hidden_act = ClipActivation::kGelu;
  config.projection_dim = 1280;
  config.bos_token_id = 0;
  config.eos_token_id = 2;
  config.pad_token_id = 1;
  return config;
}

absl::StatusOr<ClipTextConfig> ClipTextConfig::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return FieldError("(top level)", "a JSON object", json);
  if (const auto type = json.find("model_type"); type != json.end()) {
    if (*type == kFullClipModelType) {
      const auto text_config = json.find(kTextConfigKey);
      if (text_config == json.end())
        return FieldError(kTextConfigKey, "an object in a \"clip\" config", json);
      return FromJson(*text_config);
    }
    if (*type != kTextModelType) {
      return FieldError("model_type",
                        absl::StrCat("\"", kTextModelType, "\" or \"", kFullClipModelType, "\""),
                        *type);
    }
  }
  ClipTextConfig config;
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "vocab_size", config.vocab_size));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "hidden_size", config.hidden_size));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "intermediate_size", config.intermediate_size));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "num_hidden_layers", config.num_hidden_layers));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "num_attention_heads", config.num_attention_heads));
  LIKENESS_RETURN_IF_ERROR(
      ReadInt(json, "max_position_embeddings", config.max_position_embeddings));
  LIKENESS_RETURN_IF_ERROR(ReadDouble(json, "layer_norm_eps", config.layer_norm_eps));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "projection_dim", config.projection_dim));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "bos_token_id", config.bos_token_id));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "eos_token_id", config.eos_token_id));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "pad_token_id", config.pad_token_id));
  // CLIPAttention applies attention_dropout in training; this implementation has none, so a
  // config that asks for it is refused rather than silently trained differently. ("dropout" is
  // in CLIPTextConfig but unused by the text model.)
  double attention_dropout = 0.0;
  LIKENESS_RETURN_IF_ERROR(ReadDouble(json, "attention_dropout", attention_dropout));
  if (attention_dropout != 0.0) {
    return FieldError("attention_dropout", "0 (attention dropout is not implemented)",
                      attention_dropout);
  }
  if (const auto act = json.find("hidden_act"); act != json.end()) {
    LIKENESS_ASSIGN_OR_RETURN(config.hidden_act, ParseActivation(*act));
  }
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ClipTextConfig> ClipTextConfig::FromJsonText(absl::string_view text) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& error) {
    return absl::InvalidArgumentError(
        absl::StrCat("CLIP text config is not valid JSON: ", error.what()));
  }
  return FromJson(json);
}

absl::Status ClipTextConfig::Validate() const {
  const std::pair<const char*, int64_t> sizes[] = {
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"max_position_embeddings", max_position_embeddings},
      {"projection_dim", projection_dim},
  };
  for (const auto& [field, value] : sizes) {
    if (value < 1) return FieldError(field, "a positive integer", value);
  }
  if (hidden_size % num_attention_heads != 0) {
    return FieldError("num_attention_heads", absl::StrCat("a divisor of hidden_size ", hidden_size),
                      num_attention_heads);
  }
  if (!(layer_norm_eps > 0.0))
    return FieldError("layer_norm_eps", "a positive number", layer_norm_eps);
  return absl::OkStatus();
}

}  // namespace likeness::model

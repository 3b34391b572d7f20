#include "worker/model/vae/vae_config.h"

#include <cmath>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace likeness::model {
namespace {

// How much of an offending value an error message quotes.
constexpr size_t kMaxQuotedValueChars = 60;
// SDXL base 1.0's vae/config.json.
constexpr int64_t kSdxlBlockOutChannels[] = {128, 256, 512, 512};
constexpr int64_t kSdxlLayersPerBlock = 2;
constexpr int64_t kSdxlSampleSize = 1024;
constexpr double kSdxlScalingFactor = 0.13025;

// Keys FromJson reads; any other key that does not start with '_' is reported as unrecognized.
const std::set<std::string>& KnownKeys() {
  static const auto* keys =
      new std::set<std::string>{"in_channels",    "out_channels",        "down_block_types",
                                "up_block_types", "block_out_channels",  "layers_per_block",
                                "act_fn",         "latent_channels",     "norm_num_groups",
                                "sample_size",    "scaling_factor",      "shift_factor",
                                "latents_mean",   "latents_std",         "force_upcast",
                                "use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"};
  return *keys;
}

std::string Quote(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > kMaxQuotedValueChars) text = text.substr(0, kMaxQuotedValueChars) + "...";
  return text;
}

absl::Status FieldError(absl::string_view field, absl::string_view want,
                        const nlohmann::json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat("VAE config field '", field, "': want ", want, ", got ", Quote(got)));
}

// Each Read* leaves the default when `field` is absent.
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

// null (or absent) leaves the optional empty.
absl::Status ReadOptionalDouble(const nlohmann::json& json, const char* field,
                                std::optional<double>& out) {
  const auto it = json.find(field);
  if (it == json.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return FieldError(field, "a number or null", *it);
  out = it->get<double>();
  return absl::OkStatus();
}

absl::Status ReadBool(const nlohmann::json& json, const char* field, bool& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_boolean()) return FieldError(field, "true or false", *it);
  out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status ReadString(const nlohmann::json& json, const char* field, std::string& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_string()) return FieldError(field, "a string", *it);
  out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadIntList(const nlohmann::json& json, const char* field, std::vector<int64_t>& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_array()) return FieldError(field, "a list of integers", *it);
  std::vector<int64_t> values;
  for (const auto& item : *it) {
    if (!item.is_number_integer()) return FieldError(field, "a list of integers", *it);
    values.push_back(item.get<int64_t>());
  }
  out = std::move(values);
  return absl::OkStatus();
}

absl::Status ReadStringList(const nlohmann::json& json, const char* field,
                            std::vector<std::string>& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_array()) return FieldError(field, "a list of strings", *it);
  std::vector<std::string> values;
  for (const auto& item : *it) {
    if (!item.is_string()) return FieldError(field, "a list of strings", *it);
    values.push_back(item.get<std::string>());
  }
  out = std::move(values);
  return absl::OkStatus();
}

absl::Status ReadOptionalDoubleList(const nlohmann::json& json, const char* field,
                                    std::optional<std::vector<double>>& out) {
  const auto it = json.find(field);
  if (it == json.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return FieldError(field, "a list of numbers or null", *it);
  std::vector<double> values;
  for (const auto& item : *it) {
    if (!item.is_number()) return FieldError(field, "a list of numbers or null", *it);
    values.push_back(item.get<double>());
  }
  out = std::move(values);
  return absl::OkStatus();
}

absl::Status ValidateBlockTypes(const char* field, const std::vector<std::string>& types,
                                const char* want, size_t levels) {
  if (types.size() != levels) {
    return FieldError(field, absl::StrCat(levels, " entries (one per block_out_channels entry)"),
                      types);
  }
  for (const std::string& type : types) {
    if (type != want) return FieldError(field, absl::StrCat("only \"", want, "\" entries"), type);
  }
  return absl::OkStatus();
}

}  // namespace

VaeConfig VaeConfig::SdxlBase() {
  VaeConfig config;
  config.block_out_channels.assign(std::begin(kSdxlBlockOutChannels),
                                   std::end(kSdxlBlockOutChannels));
  config.down_block_types.assign(config.block_out_channels.size(), kVaeDownBlockType);
  config.up_block_types.assign(config.block_out_channels.size(), kVaeUpBlockType);
  config.layers_per_block = kSdxlLayersPerBlock;
  config.latent_channels = 4;
  config.norm_num_groups = 32;
  config.sample_size = kSdxlSampleSize;
  config.scaling_factor = kSdxlScalingFactor;
  config.force_upcast = true;
  return config;
}

absl::StatusOr<VaeConfig> VaeConfig::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return FieldError("(top level)", "a JSON object", json);
  VaeConfig config;
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "in_channels", config.in_channels));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "out_channels", config.out_channels));
  LIKENESS_RETURN_IF_ERROR(ReadStringList(json, "down_block_types", config.down_block_types));
  LIKENESS_RETURN_IF_ERROR(ReadStringList(json, "up_block_types", config.up_block_types));
  LIKENESS_RETURN_IF_ERROR(ReadIntList(json, "block_out_channels", config.block_out_channels));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "layers_per_block", config.layers_per_block));
  LIKENESS_RETURN_IF_ERROR(ReadString(json, "act_fn", config.act_fn));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "latent_channels", config.latent_channels));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "norm_num_groups", config.norm_num_groups));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "sample_size", config.sample_size));
  LIKENESS_RETURN_IF_ERROR(ReadDouble(json, "scaling_factor", config.scaling_factor));
  LIKENESS_RETURN_IF_ERROR(ReadOptionalDouble(json, "shift_factor", config.shift_factor));
  LIKENESS_RETURN_IF_ERROR(ReadOptionalDoubleList(json, "latents_mean", config.latents_mean));
  LIKENESS_RETURN_IF_ERROR(ReadOptionalDoubleList(json, "latents_std", config.latents_std));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "force_upcast", config.force_upcast));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "use_quant_conv", config.use_quant_conv));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "use_post_quant_conv", config.use_post_quant_conv));
  LIKENESS_RETURN_IF_ERROR(
      ReadBool(json, "mid_block_add_attention", config.mid_block_add_attention));
  for (const auto& [key, value] : json.items()) {
    if (!key.empty() && key[0] != '_' && KnownKeys().count(key) == 0)
      config.unrecognized_keys.push_back(key);
  }
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<VaeConfig> VaeConfig::FromJsonText(absl::string_view text) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& error) {
    return absl::InvalidArgumentError(absl::StrCat("VAE config is not valid JSON: ", error.what()));
  }
  return FromJson(json);
}

absl::Status VaeConfig::Validate() const {
  const std::pair<const char*, int64_t> sizes[] = {
      {"in_channels", in_channels},           {"out_channels", out_channels},
      {"layers_per_block", layers_per_block}, {"latent_channels", latent_channels},
      {"norm_num_groups", norm_num_groups},   {"sample_size", sample_size},
  };
  for (const auto& [field, value] : sizes) {
    if (value < 1) return FieldError(field, "a positive integer", value);
  }
  if (block_out_channels.empty())
    return FieldError("block_out_channels", "at least one entry", block_out_channels);
  for (const int64_t channels : block_out_channels) {
    if (channels < 1 || channels % norm_num_groups != 0) {
      return FieldError("block_out_channels",
                        absl::StrCat("positive multiples of norm_num_groups ", norm_num_groups),
                        block_out_channels);
    }
  }
  LIKENESS_RETURN_IF_ERROR(ValidateBlockTypes("down_block_types", down_block_types,
                                              kVaeDownBlockType, block_out_channels.size()));
  LIKENESS_RETURN_IF_ERROR(ValidateBlockTypes("up_block_types", up_block_types, kVaeUpBlockType,
                                              block_out_channels.size()));
  if (act_fn != kVaeActivation)
    return FieldError("act_fn", absl::StrCat("\"", kVaeActivation, "\""), act_fn);
  if (!(scaling_factor > 0.0) || !std::isfinite(scaling_factor)) {
    return FieldError("scaling_factor", "a positive finite number", scaling_factor);
  }
  if (shift_factor.has_value() && !std::isfinite(*shift_factor)) {
    return FieldError("shift_factor", "a finite number or null", *shift_factor);
  }
  if (latents_mean.has_value() != latents_std.has_value()) {
    return FieldError(latents_mean.has_value() ? "latents_std" : "latents_mean",
                      "a list when the other of latents_mean/latents_std is given", nullptr);
  }
  if (latents_mean.has_value()) {
    const std::string want = absl::StrCat(latent_channels, " numbers (latent_channels)");
    if (static_cast<int64_t>(latents_mean->size()) != latent_channels) {
      return FieldError("latents_mean", want, *latents_mean);
    }
    if (static_cast<int64_t>(latents_std->size()) != latent_channels) {
      return FieldError("latents_std", want, *latents_std);
    }
    for (const double s : *latents_std) {
      if (!(s > 0.0) || !std::isfinite(s))
        return FieldError("latents_std", "positive finite numbers", *latents_std);
    }
    if (shift_factor.has_value()) {
      return FieldError("shift_factor", "null when latents_mean/latents_std are given",
                        *shift_factor);
    }
  }
  return absl::OkStatus();
}

int64_t VaeConfig::DownsampleFactor() const {
  return int64_t{1} << (block_out_channels.empty() ? 0 : block_out_channels.size() - 1);
}

}  // namespace likeness::model

#include "worker/model/unet/unet_config.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace likeness::model::unet {
namespace {

using Json = nlohmann::json;

// diffusers' UNet2DConditionModel defaults for the list-or-int fields.
constexpr int64_t kDefaultHeads = 8;  // attention_head_dim = 8
constexpr int64_t kDefaultCrossAttentionDim = 1280;
constexpr int64_t kDefaultLayersPerBlock = 2;
constexpr int64_t kDefaultTransformerLayers = 1;

// Reads fields of one config object and remembers which it read, so that the fields nobody read
// can be reported (rule 3 of unet_config.h).
class FieldReader {
 public:
  explicit FieldReader(const Json& json) : json_(json) {}

  // The value of `key`, or nullptr when it is absent or null.
  const Json* Find(const std::string& key) {
    read_.insert(key);
    auto it = json_.find(key);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
  }

  bool IsExplicitNull(const std::string& key) const {
    auto it = json_.find(key);
    return it != json_.end() && it->is_null();
  }

  absl::Status Error(const std::string& key, const Json& value, absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("UNet config: field '", key, "' = ", value.dump(), ": ", why));
  }

  absl::Status Int(const std::string& key, int64_t* out) {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number_integer()) return Error(key, *v, "expected an integer");
    *out = v->get<int64_t>();
    return absl::OkStatus();
  }

  absl::Status Double(const std::string& key, double* out) {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number()) return Error(key, *v, "expected a number");
    *out = v->get<double>();
    return absl::OkStatus();
  }

  absl::Status Bool(const std::string& key, bool* out) {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean()) return Error(key, *v, "expected true or false");
    *out = v->get<bool>();
    return absl::OkStatus();
  }

  absl::Status StringList(const std::string& key, std::vector<std::string>* out) {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array()) return Error(key, *v, "expected a list of strings");
    std::vector<std::string> values;
    for (const Json& item : *v) {
      if (!item.is_string()) return Error(key, *v, "expected a list of strings");
      values.push_back(item.get<std::string>());
    }
    *out = std::move(values);
    return absl::OkStatus();
  }

  // An int (the same for every level) or a list of `levels` ints.
  absl::Status IntOrList(const std::string& key, int64_t levels, int64_t fallback,
                         std::vector<int64_t>* out) {
    const Json* v = Find(key);
    if (v == nullptr) {
      *out = std::vector<int64_t>(levels, fallback);
      return absl::OkStatus();
    }
    if (v->is_number_integer()) {
      *out = std::vector<int64_t>(levels, v->get<int64_t>());
      return absl::OkStatus();
    }
    if (!v->is_array() || static_cast<int64_t>(v->size()) != levels) {
      return Error(
          key, *v,
          absl::StrCat("expected an integer or a list of ", levels, " integers (one per level)"));
    }
    out->clear();
    for (const Json& item : *v) {
      if (!item.is_number_integer()) return Error(key, *v, "expected a list of integers");
      out->push_back(item.get<int64_t>());
    }
    return absl::OkStatus();
  }

  // An int, or a list with one int or list of ints per level: [level][layer].
  absl::Status NestedIntList(const std::string& key, int64_t levels,
                             std::vector<std::vector<int64_t>>* out) {
    const Json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    if (v->is_number_integer()) {
      *out = std::vector<std::vector<int64_t>>(levels, {v->get<int64_t>()});
      return absl::OkStatus();
    }
    if (!v->is_array() || static_cast<int64_t>(v->size()) != levels) {
      return Error(
          key, *v,
          absl::StrCat("expected an integer or a list of ", levels, " entries (one per level)"));
    }
    out->clear();
    for (const Json& item : *v) {
      std::vector<int64_t> per_layer;
      if (item.is_number_integer()) {
        per_layer.push_back(item.get<int64_t>());
      } else if (item.is_array() && !item.empty()) {
        for (const Json& n : item) {
          if (!n.is_number_integer()) return Error(key, *v, "expected integers");
          per_layer.push_back(n.get<int64_t>());
        }
      } else {
        return Error(key, *v, "expected an integer or a list of integers per level");
      }
      out->push_back(std::move(per_layer));
    }
    return absl::OkStatus();
  }

  // `key` must be absent, null or false: a feature this code does not have.
  absl::Status RequireOff(const std::string& key) {
    const Json* v = Find(key);
    if (v == nullptr || (v->is_boolean() && !v->get<bool>())) return absl::OkStatus();
    return Error(key, *v, "not supported by this UNet implementation");
  }

  absl::Status CheckAllRead() const {
    for (const auto& [key, value] : json_.items()) {
      if (read_.count(key) != 0 || absl::StartsWith(key, "_")) continue;
      bool ignored = false;
      for (const char* name : kIgnoredConfigFields) ignored = ignored || key == name;
      if (ignored || value.is_null() || (value.is_boolean() && !value.get<bool>())) continue;
      return Error(key, value, "unknown field (not supported by this UNet implementation)");
    }
    return absl::OkStatus();
  }

 private:
  const Json& json_;
  std::set<std::string> read_;
};

absl::Status ParseSwitches(FieldReader& r, UNetConfig& c) {
  if (const Json* v = r.Find("act_fn"); v != nullptr && *v != "silu" && *v != "swish") {
    return r.Error("act_fn", *v, "only \"silu\" is supported");
  }
  if (const Json* v = r.Find("time_embedding_type"); v != nullptr && *v != "positional") {
    return r.Error("time_embedding_type", *v, "only \"positional\" is supported");
  }
  if (const Json* v = r.Find("attention_type"); v != nullptr && *v != "default") {
    return r.Error("attention_type", *v, "only \"default\" is supported");
  }
  if (r.IsExplicitNull("mid_block_type")) {
    return r.Error("mid_block_type", Json(), "a UNet without a mid block is not supported");
  }
  if (const Json* v = r.Find("mid_block_type"); v != nullptr && *v != kUNetMidBlock2DCrossAttn) {
    return r.Error("mid_block_type", *v,
                   absl::StrCat("only \"", kUNetMidBlock2DCrossAttn, "\" is supported"));
  }
  if (const Json* v = r.Find("addition_embed_type"); v != nullptr) {
    if (*v != "text_time")
      return r.Error("addition_embed_type", *v, "only null and \"text_time\" are supported");
    c.addition_embed_type = AdditionEmbedType::kTextTime;
  }
  if (const Json* v = r.Find("resnet_time_scale_shift"); v != nullptr) {
    if (*v == "default") {
      c.resnet_time_scale_shift = ResnetTimeScaleShift::kDefault;
    } else if (*v == "scale_shift") {
      c.resnet_time_scale_shift = ResnetTimeScaleShift::kScaleShift;
    } else {
      return r.Error("resnet_time_scale_shift", *v,
                     "only \"default\" and \"scale_shift\" are supported");
    }
  }
  if (const Json* v = r.Find("dropout");
      v != nullptr && (!v->is_number() || v->get<double>() != 0.0)) {
    return r.Error("dropout", *v, "only 0 is supported");
  }
  // Features that must be off: absent, null or false.
  for (const char* key :
       {"class_embed_type", "num_class_embeds", "class_embeddings_concat", "encoder_hid_dim",
        "encoder_hid_dim_type", "time_cond_proj_dim", "time_embedding_act_fn", "timestep_post_act",
        "cross_attention_norm", "dual_cross_attention", "mid_block_only_cross_attention"}) {
    LIKENESS_RETURN_IF_ERROR(r.RequireOff(key));
  }
  if (const Json* v = r.Find("only_cross_attention"); v != nullptr) {
    const bool all_false =
        v->is_boolean() ? !v->get<bool>()
                        : v->is_array() && std::all_of(v->begin(), v->end(), [](const Json& x) {
                            return x.is_boolean() && !x.get<bool>();
                          });
    if (!all_false) return r.Error("only_cross_attention", *v, "only false is supported");
  }
  return absl::OkStatus();
}

absl::Status ParseSizes(FieldReader& r, UNetConfig& c) {
  LIKENESS_RETURN_IF_ERROR(r.Int("in_channels", &c.in_channels));
  LIKENESS_RETURN_IF_ERROR(r.Int("out_channels", &c.out_channels));
  LIKENESS_RETURN_IF_ERROR(r.Bool("center_input_sample", &c.center_input_sample));
  LIKENESS_RETURN_IF_ERROR(r.Bool("flip_sin_to_cos", &c.flip_sin_to_cos));
  LIKENESS_RETURN_IF_ERROR(r.Double("freq_shift", &c.freq_shift));
  LIKENESS_RETURN_IF_ERROR(r.Int("conv_in_kernel", &c.conv_in_kernel));
  LIKENESS_RETURN_IF_ERROR(r.Int("conv_out_kernel", &c.conv_out_kernel));
  LIKENESS_RETURN_IF_ERROR(r.StringList("down_block_types", &c.down_block_types));
  LIKENESS_RETURN_IF_ERROR(r.StringList("up_block_types", &c.up_block_types));
  if (const Json* v = r.Find("block_out_channels"); v != nullptr) {
    if (!v->is_array() || v->empty())
      return r.Error("block_out_channels", *v, "expected a list of integers");
    c.block_out_channels.clear();
    for (const Json& item : *v) {
      if (!item.is_number_integer())
        return r.Error("block_out_channels", *v, "expected a list of integers");
      c.block_out_channels.push_back(item.get<int64_t>());
    }
  }
  const int64_t levels = c.num_levels();
  if (static_cast<int64_t>(c.down_block_types.size()) != levels) {
    return absl::InvalidArgumentError(absl::StrCat("UNet config: down_block_types has ",
                                                   c.down_block_types.size(),
                                                   " entries but block_out_channels has ", levels));
  }
  LIKENESS_RETURN_IF_ERROR(
      r.IntOrList("layers_per_block", levels, kDefaultLayersPerBlock, &c.layers_per_block));
  LIKENESS_RETURN_IF_ERROR(r.IntOrList("cross_attention_dim", levels, kDefaultCrossAttentionDim,
                                       &c.cross_attention_dim));
  // Rule 4: num_attention_heads wins over attention_head_dim; both count heads.
  std::vector<int64_t> heads_from_head_dim;
  LIKENESS_RETURN_IF_ERROR(
      r.IntOrList("attention_head_dim", levels, kDefaultHeads, &heads_from_head_dim));
  c.num_attention_heads = heads_from_head_dim;
  if (r.Find("num_attention_heads") != nullptr) {
    LIKENESS_RETURN_IF_ERROR(
        r.IntOrList("num_attention_heads", levels, kDefaultHeads, &c.num_attention_heads));
  }
  c.transformer_layers_per_block =
      std::vector<std::vector<int64_t>>(levels, {kDefaultTransformerLayers});
  LIKENESS_RETURN_IF_ERROR(
      r.NestedIntList("transformer_layers_per_block", levels, &c.transformer_layers_per_block));
  LIKENESS_RETURN_IF_ERROR(r.NestedIntList("reverse_transformer_layers_per_block", levels,
                                           &c.reverse_transformer_layers_per_block));
  LIKENESS_RETURN_IF_ERROR(r.Bool("use_linear_projection", &c.use_linear_projection));
  LIKENESS_RETURN_IF_ERROR(r.Bool("upcast_attention", &c.upcast_attention));
  LIKENESS_RETURN_IF_ERROR(r.Int("downsample_padding", &c.downsample_padding));
  LIKENESS_RETURN_IF_ERROR(r.Double("mid_block_scale_factor", &c.mid_block_scale_factor));
  LIKENESS_RETURN_IF_ERROR(r.Int("norm_num_groups", &c.norm_num_groups));
  LIKENESS_RETURN_IF_ERROR(r.Double("norm_eps", &c.norm_eps));
  LIKENESS_RETURN_IF_ERROR(r.Int("time_embedding_dim", &c.time_embedding_dim));
  LIKENESS_RETURN_IF_ERROR(r.Int("addition_time_embed_dim", &c.addition_time_embed_dim));
  LIKENESS_RETURN_IF_ERROR(
      r.Int("projection_class_embeddings_input_dim", &c.projection_class_embeddings_input_dim));
  if (r.IsExplicitNull("norm_num_groups")) {
    return r.Error("norm_num_groups", Json(), "a UNet without output GroupNorm is not supported");
  }
  return absl::OkStatus();
}

absl::Status LevelError(absl::string_view field, int64_t level, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("UNet config: ", field, "[", level, "]: ", why));
}

}  // namespace

absl::StatusOr<UNetConfig> UNetConfig::FromJson(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("UNet config: expected a JSON object");
  if (auto it = json.find("_class_name"); it != json.end() && *it != "UNet2DConditionModel") {
    return absl::InvalidArgumentError(absl::StrCat(
        "UNet config: field '_class_name' = ", it->dump(), ": expected \"UNet2DConditionModel\""));
  }
  UNetConfig c;
  FieldReader reader(json);
  LIKENESS_RETURN_IF_ERROR(ParseSizes(reader, c));
  LIKENESS_RETURN_IF_ERROR(ParseSwitches(reader, c));
  LIKENESS_RETURN_IF_ERROR(reader.CheckAllRead());
  LIKENESS_RETURN_IF_ERROR(c.Validate());
  return c;
}

absl::StatusOr<UNetConfig> UNetConfig::FromJsonString(const std::string& text) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("UNet config: not valid JSON");
  return FromJson(json);
}

UNetConfig UNetConfig::SdxlBase() {
  UNetConfig c;
  c.in_channels = 4;
  c.out_channels = 4;
  c.flip_sin_to_cos = true;
  c.freq_shift = 0;
  c.down_block_types = {kDownBlock2D, kCrossAttnDownBlock2D, kCrossAttnDownBlock2D};
  c.up_block_types = {kCrossAttnUpBlock2D, kCrossAttnUpBlock2D, kUpBlock2D};
  c.block_out_channels = {320, 640, 1280};
  c.layers_per_block = {2, 2, 2};
  c.transformer_layers_per_block = {{1}, {2}, {10}};
  c.num_attention_heads = {5, 10, 20};
  c.cross_attention_dim = {2048, 2048, 2048};
  c.use_linear_projection = true;
  c.upcast_attention = false;
  c.norm_num_groups = 32;
  c.norm_eps = 1e-5;
  c.addition_embed_type = AdditionEmbedType::kTextTime;
  c.addition_time_embed_dim = 256;
  c.projection_class_embeddings_input_dim = 2816;  // 1280 pooled + 6 * 256
  return c;
}

std::vector<int64_t> UNetConfig::DownTransformerLayers(int64_t level) const {
  const std::vector<int64_t>& spec = transformer_layers_per_block[level];
  return spec.size() == 1 ? std::vector<int64_t>(layers_per_block[level], spec[0]) : spec;
}

std::vector<int64_t> UNetConfig::UpTransformerLayers(int64_t up_level) const {
  const int64_t down_level = num_levels() - 1 - up_level;
  const std::vector<int64_t>& spec = reverse_transformer_layers_per_block.empty()
                                         ? transformer_layers_per_block[down_level]
                                         : reverse_transformer_layers_per_block[up_level];
  return spec.size() == 1 ? std::vector<int64_t>(layers_per_block[down_level] + 1, spec[0]) : spec;
}

absl::Status UNetConfig::Validate() const {
  const int64_t levels = num_levels();
  if (levels == 0) return absl::InvalidArgumentError("UNet config: block_out_channels is empty");
  const auto check_size = [&](absl::string_view field, size_t size) -> absl::Status {
    if (static_cast<int64_t>(size) == levels) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("UNet config: ", field, " has ", size,
                                                   " entries but block_out_channels has ", levels));
  };
  LIKENESS_RETURN_IF_ERROR(check_size("down_block_types", down_block_types.size()));
  LIKENESS_RETURN_IF_ERROR(check_size("up_block_types", up_block_types.size()));
  LIKENESS_RETURN_IF_ERROR(check_size("layers_per_block", layers_per_block.size()));
  LIKENESS_RETURN_IF_ERROR(check_size("num_attention_heads", num_attention_heads.size()));
  LIKENESS_RETURN_IF_ERROR(check_size("cross_attention_dim", cross_attention_dim.size()));
  LIKENESS_RETURN_IF_ERROR(
      check_size("transformer_layers_per_block", transformer_layers_per_block.size()));
  if (!reverse_transformer_layers_per_block.empty()) {
    LIKENESS_RETURN_IF_ERROR(check_size("reverse_transformer_layers_per_block",
                                        reverse_transformer_layers_per_block.size()));
  }
  if (in_channels <= 0 || out_channels <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("UNet config: in_channels ", in_channels,
                                                   " / out_channels ", out_channels,
                                                   " must be positive"));
  }
  for (int64_t kernel : {conv_in_kernel, conv_out_kernel}) {
    if (kernel <= 0 || kernel % 2 == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("UNet config: conv kernel ", kernel, " must be odd"));
    }
  }
  if (norm_num_groups <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("UNet config: norm_num_groups ", norm_num_groups));
  }
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t channels = block_out_channels[i];
    if (channels <= 0 || channels % norm_num_groups != 0) {
      return LevelError("block_out_channels", i,
                        absl::StrCat(channels, " is not a positive multiple of norm_num_groups ",
                                     norm_num_groups));
    }
    if (down_block_types[i] != kDownBlock2D && down_block_types[i] != kCrossAttnDownBlock2D) {
      return LevelError("down_block_types", i,
                        absl::StrCat("\"", down_block_types[i], "\" is not supported"));
    }
    if (up_block_types[i] != kUpBlock2D && up_block_types[i] != kCrossAttnUpBlock2D) {
      return LevelError("up_block_types", i,
                        absl::StrCat("\"", up_block_types[i], "\" is not supported"));
    }
    if (layers_per_block[i] <= 0) return LevelError("layers_per_block", i, "must be positive");
    if (num_attention_heads[i] <= 0)
      return LevelError("attention_head_dim (number of heads)", i, "must be positive");
    if (cross_attention_dim[i] <= 0)
      return LevelError("cross_attention_dim", i, "must be positive");
    const size_t down_spec = transformer_layers_per_block[i].size();
    if (down_spec != 1 && static_cast<int64_t>(down_spec) != layers_per_block[i]) {
      return LevelError("transformer_layers_per_block", i, "needs one entry or one per layer");
    }
    if (down_spec != 1 && reverse_transformer_layers_per_block.empty()) {
      return LevelError(
          "transformer_layers_per_block", i,
          "per-layer lists need reverse_transformer_layers_per_block (as in diffusers)");
    }
    if (!reverse_transformer_layers_per_block.empty()) {
      const size_t up_spec = reverse_transformer_layers_per_block[i].size();
      const int64_t up_layers = layers_per_block[levels - 1 - i] + 1;
      if (up_spec != 1 && static_cast<int64_t>(up_spec) != up_layers) {
        return LevelError("reverse_transformer_layers_per_block", i,
                          "needs one entry or one per layer");
      }
    }
    const bool down_attention = down_block_types[i] == kCrossAttnDownBlock2D;
    const int64_t up_level = levels - 1 - i;  // the up block at this resolution
    const bool up_attention = up_block_types[up_level] == kCrossAttnUpBlock2D;
    if ((down_attention || up_attention) && channels % num_attention_heads[i] != 0) {
      return LevelError(
          "attention_head_dim (number of heads)", i,
          absl::StrCat(num_attention_heads[i], " does not divide ", channels, " channels"));
    }
  }
  if (block_out_channels.back() % num_attention_heads.back() != 0) {
    return absl::InvalidArgumentError(
        "UNet config: the mid block's heads do not divide its channels");
  }
  if (addition_embed_type == AdditionEmbedType::kTextTime &&
      (addition_time_embed_dim <= 0 || projection_class_embeddings_input_dim <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UNet config: addition_embed_type \"text_time\" needs addition_time_embed_dim (",
        addition_time_embed_dim, ") and projection_class_embeddings_input_dim (",
        projection_class_embeddings_input_dim, ")"));
  }
  return absl::OkStatus();
}

}  // namespace likeness::model::unet

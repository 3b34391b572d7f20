#include "worker/model/vision/vision_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"
#include "common/safetensors/safetensors_file.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/diffusers_folder.h"
#include "worker/model/layers.h"
#include "worker/model/vision/dino_rename_table.h"

namespace likeness::model {
namespace {

namespace fs = std::filesystem;
namespace ckpt = checkpoint;
using nlohmann::json;

constexpr char kDetectedDescription[] = "detected from tensor shapes";
constexpr char kTransformersNaming[] = "transformers ViTModel";
constexpr char kOriginalDinoNaming[] = "original DINO";

// The weights of one encoder file and the config.json that describes it, if any.
struct Source {
  StateDict weights;
  std::string weights_path;
  std::optional<json> config;
  std::string config_description;  // how `config` was found, or why none was used
};

std::string ModelTypeOf(const json& config) {
  const auto it = config.find("model_type");
  return it != config.end() && it->is_string() ? it->get<std::string>() : "";
}

bool Accepts(const std::vector<std::string>& model_types, const json& config) {
  return config.is_object() &&
         std::find(model_types.begin(), model_types.end(), ModelTypeOf(config)) !=
             model_types.end();
}

absl::StatusOr<Source> ReadFolder(const std::string& path,
                                  const std::vector<std::string>& model_types) {
  LIKENESS_ASSIGN_OR_RETURN(ckpt::DiffusersPipelineFolder folder, ckpt::OpenDiffusersFolder(path));
  if (!folder.single_component) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a pipeline folder (", ckpt::kModelIndexFile, "); give the encoder's own folder"));
  }
  const std::string& name = folder.components.front().name;
  Source source;
  LIKENESS_ASSIGN_OR_RETURN(json config, ckpt::LoadComponentConfig(folder, name));
  const std::string config_path = (fs::path(path) / ckpt::kComponentConfigFile).string();
  if (!Accepts(model_types, config)) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_path, ": model_type \"", ModelTypeOf(config), "\", want one of \"",
                     absl::StrJoin(model_types, "\", \""), "\""));
  }
  source.config = std::move(config);
  source.config_description = absl::StrCat("config.json (", config_path, ")");
  LIKENESS_ASSIGN_OR_RETURN(source.weights_path, ckpt::FindWeightsFile(path, ""));
  LIKENESS_ASSIGN_OR_RETURN(source.weights, ckpt::LoadComponent(folder, name));
  return source;
}

absl::StatusOr<Source> ReadFile(const std::string& path,
                                const std::vector<std::string>& model_types) {
  Source source;
  source.weights_path = path;
  LIKENESS_ASSIGN_OR_RETURN(std::shared_ptr<safetensors::SafetensorsFile> file,
                            safetensors::SafetensorsFile::Open(path));
  LIKENESS_ASSIGN_OR_RETURN(source.weights, ReadStateDict(*file));
  source.config_description = kDetectedDescription;
  const std::string sibling =
      (fs::path(path).parent_path() / ckpt::kComponentConfigFile).string();
  std::error_code error;
  if (!fs::is_regular_file(sibling, error)) return source;
  absl::StatusOr<std::string> text = ReadFileToString(sibling);
  if (!text.ok()) return text.status();
  json config = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (Accepts(model_types, config)) {
    source.config = std::move(config);
    source.config_description = absl::StrCat("config.json (", sibling, ")");
  } else {
    // Another model's config beside the file (a folder of mixed downloads): not this one's.
    source.config_description =
        absl::StrCat(kDetectedDescription, "; ", sibling, " is not a ",
                     absl::StrJoin(model_types, "/"), " config and was not used");
  }
  return source;
}

absl::StatusOr<Source> ReadSource(const std::string& path,
                                  const std::vector<std::string>& model_types) {
  std::error_code error;
  if (fs::is_directory(path, error)) return ReadFolder(path, model_types);
  if (fs::is_regular_file(path, error)) return ReadFile(path, model_types);
  return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
}

// The shape of `name`, which must have `dims` dimensions.
absl::StatusOr<std::vector<int64_t>> ShapeOf(const StateDict& weights, const std::string& name,
                                             int64_t dims) {
  const auto it = weights.find(name);
  if (it == weights.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no tensor '", name, "' (needed to detect the config from shapes)"));
  }
  if (it->second.dim() != dims) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has shape ",
                                                   c10::str(it->second.sizes()), ", want ", dims,
                                                   " dimensions"));
  }
  return it->second.sizes().vec();
}

// How many `prefix{i}suffix` exist for i = 0, 1, ...
int64_t CountIndexed(const StateDict& weights, const std::string& prefix,
                     const std::string& suffix) {
  int64_t count = 0;
  while (weights.count(absl::StrCat(prefix, count, suffix)) > 0) ++count;
  return count;
}

absl::StatusOr<int64_t> AssumedHeads(int64_t hidden, absl::string_view what) {
  if (hidden % kAssumedHeadDim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " width ", hidden, " is not a multiple of ", kAssumedHeadDim,
        ", so its attention heads cannot be assumed: give a config.json beside the weights"));
  }
  return hidden / kAssumedHeadDim;
}

// The image side of a square grid of `positions - 1` patches of `patch` pixels.
absl::StatusOr<int64_t> ImageSizeFromPositions(int64_t positions, int64_t patch,
                                               absl::string_view tensor) {
  const int64_t grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(positions - 1))));
  if (positions < 2 || grid * grid != positions - 1) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", tensor, "' has ", positions,
                                                   " positions, not 1 + a square grid"));
  }
  return grid * patch;
}

void MoveTo(std::vector<std::string>& from, std::vector<std::string>& to) {
  to.insert(to.end(), from.begin(), from.end());
  from.clear();
}

template <typename Keys>
bool IsOneOf(const std::string& name, const Keys& keys) {
  return std::any_of(std::begin(keys), std::end(keys), [&](const char* key) { return name == key; });
}

}  // namespace

absl::StatusOr<ClipVisionConfig> DetectClipVisionConfig(const StateDict& weights) {
  ClipVisionConfig config;
  const std::string e = "vision_model.embeddings.";
  LIKENESS_ASSIGN_OR_RETURN(auto patch, ShapeOf(weights, e + "patch_embedding.weight", 4));
  config.hidden_size = patch[0];
  config.num_channels = patch[1];
  config.patch_size = patch[2];
  const std::string positions_name = e + "position_embedding.weight";
  LIKENESS_ASSIGN_OR_RETURN(auto positions, ShapeOf(weights, positions_name, 2));
  LIKENESS_ASSIGN_OR_RETURN(config.image_size,
                            ImageSizeFromPositions(positions[0], config.patch_size, positions_name));
  const std::string layers = "vision_model.encoder.layers.";
  config.num_hidden_layers = CountIndexed(weights, layers, ".self_attn.q_proj.weight");
  LIKENESS_ASSIGN_OR_RETURN(auto fc1, ShapeOf(weights, layers + "0.mlp.fc1.weight", 2));
  config.intermediate_size = fc1[0];
  LIKENESS_ASSIGN_OR_RETURN(auto projection, ShapeOf(weights, "visual_projection.weight", 2));
  config.projection_dim = projection[0];
  LIKENESS_ASSIGN_OR_RETURN(config.num_attention_heads,
                            AssumedHeads(config.hidden_size, "the CLIP vision tower's"));
  config.hidden_act = ClipActivation::kQuickGelu;
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ClipTextConfig> DetectClipTextConfig(const StateDict& weights) {
  ClipTextConfig config;
  const std::string e = "text_model.embeddings.";
  LIKENESS_ASSIGN_OR_RETURN(auto tokens, ShapeOf(weights, e + "token_embedding.weight", 2));
  config.vocab_size = tokens[0];
  config.hidden_size = tokens[1];
  LIKENESS_ASSIGN_OR_RETURN(auto positions, ShapeOf(weights, e + "position_embedding.weight", 2));
  config.max_position_embeddings = positions[0];
  const std::string layers = "text_model.encoder.layers.";
  config.num_hidden_layers = CountIndexed(weights, layers, ".self_attn.q_proj.weight");
  LIKENESS_ASSIGN_OR_RETURN(auto fc1, ShapeOf(weights, layers + "0.mlp.fc1.weight", 2));
  config.intermediate_size = fc1[0];
  LIKENESS_ASSIGN_OR_RETURN(auto projection, ShapeOf(weights, "text_projection.weight", 2));
  config.projection_dim = projection[0];
  LIKENESS_ASSIGN_OR_RETURN(config.num_attention_heads,
                            AssumedHeads(config.hidden_size, "the CLIP text tower's"));
  config.hidden_act = ClipActivation::kQuickGelu;
  // openai/clip-vit-large-patch14's text_config ids.
  config.bos_token_id = 0;
  config.eos_token_id = kOpenAiClipTextEosTokenId;
  config.pad_token_id = 1;
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ViTConfig> DetectViTConfig(const StateDict& weights, double layer_norm_eps) {
  ViTConfig config;
  LIKENESS_ASSIGN_OR_RETURN(
      auto patch, ShapeOf(weights, "embeddings.patch_embeddings.projection.weight", 4));
  config.hidden_size = patch[0];
  config.num_channels = patch[1];
  config.patch_size = patch[2];
  const std::string positions_name = "embeddings.position_embeddings";
  LIKENESS_ASSIGN_OR_RETURN(auto positions, ShapeOf(weights, positions_name, 3));
  LIKENESS_ASSIGN_OR_RETURN(config.image_size,
                            ImageSizeFromPositions(positions[1], config.patch_size, positions_name));
  const std::string layers = "encoder.layer.";
  config.num_hidden_layers = CountIndexed(weights, layers, ".attention.attention.query.weight");
  LIKENESS_ASSIGN_OR_RETURN(auto fc1, ShapeOf(weights, layers + "0.intermediate.dense.weight", 2));
  config.intermediate_size = fc1[0];
  config.qkv_bias = weights.count(layers + "0.attention.attention.query.bias") > 0;
  LIKENESS_ASSIGN_OR_RETURN(config.num_attention_heads,
                            AssumedHeads(config.hidden_size, "the ViT's"));
  config.hidden_act = ClipActivation::kGelu;
  config.layer_norm_eps = layer_norm_eps;
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  return config;
}

json ClipVisionConfigToJson(const ClipVisionConfig& c) {
  return {{"model_type", kClipVisionModelType},
          {"hidden_size", c.hidden_size},
          {"intermediate_size", c.intermediate_size},
          {"num_hidden_layers", c.num_hidden_layers},
          {"num_attention_heads", c.num_attention_heads},
          {"num_channels", c.num_channels},
          {"image_size", c.image_size},
          {"patch_size", c.patch_size},
          {"projection_dim", c.projection_dim},
          {"hidden_act", std::string(ClipActivationName(c.hidden_act))},
          {"layer_norm_eps", c.layer_norm_eps}};
}

json ClipTextConfigToJson(const ClipTextConfig& c) {
  return {{"model_type", "clip_text_model"},
          {"vocab_size", c.vocab_size},
          {"hidden_size", c.hidden_size},
          {"intermediate_size", c.intermediate_size},
          {"num_hidden_layers", c.num_hidden_layers},
          {"num_attention_heads", c.num_attention_heads},
          {"max_position_embeddings", c.max_position_embeddings},
          {"projection_dim", c.projection_dim},
          {"hidden_act", std::string(ClipActivationName(c.hidden_act))},
          {"layer_norm_eps", c.layer_norm_eps},
          {"bos_token_id", c.bos_token_id},
          {"eos_token_id", c.eos_token_id},
          {"pad_token_id", c.pad_token_id}};
}

json ViTConfigToJson(const ViTConfig& c) {
  return {{"model_type", kViTModelType},
          {"hidden_size", c.hidden_size},
          {"num_hidden_layers", c.num_hidden_layers},
          {"num_attention_heads", c.num_attention_heads},
          {"intermediate_size", c.intermediate_size},
          {"hidden_act", std::string(ClipActivationName(c.hidden_act))},
          {"layer_norm_eps", c.layer_norm_eps},
          {"image_size", c.image_size},
          {"patch_size", c.patch_size},
          {"num_channels", c.num_channels},
          {"qkv_bias", c.qkv_bias}};
}

absl::StatusOr<LoadedClip> LoadClip(const std::string& path, const VisionLoadOptions& options) {
  LIKENESS_ASSIGN_OR_RETURN(Source source,
                            ReadSource(path, {kFullClipModelType, kClipVisionModelType}));
  LoadedClip out;
  out.weights_path = source.weights_path;
  StateDict vision_weights, text_weights;
  for (auto& [name, tensor] : source.weights) {
    if (IsOneOf(name, kClipVisionIgnorableKeys) || IsOneOf(name, kClipTextIgnorableKeys) ||
        IsOneOf(name, kClipUnusedKeys)) {
      out.ignored.push_back(name);
    } else if (absl::StartsWith(name, kClipVisionPrefix) ||
               absl::StartsWith(name, kClipVisualProjectionPrefix)) {
      vision_weights.emplace(name, tensor);
    } else if (absl::StartsWith(name, kClipTextPrefix) ||
               absl::StartsWith(name, kClipTextProjectionPrefix)) {
      text_weights.emplace(name, tensor);
    } else {
      out.unexpected.push_back(name);
    }
  }
  source.weights.clear();

  const bool full_config = source.config && ModelTypeOf(*source.config) == kFullClipModelType;
  ClipVisionConfig vision_config;
  if (source.config) {
    LIKENESS_ASSIGN_OR_RETURN(vision_config, ClipVisionConfig::FromJson(*source.config));
  } else {
    absl::StatusOr<ClipVisionConfig> detected = DetectClipVisionConfig(vision_weights);
    if (!detected.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a CLIP vision checkpoint: ", detected.status().message()));
    }
    vision_config = *detected;
  }
  // A text tower without its projection (a bare CLIPTextModel) cannot give CLIP-T's embedding.
  const bool has_text = text_weights.count("text_projection.weight") > 0;
  ClipTextConfig text_config;
  if (has_text) {
    if (full_config) {
      LIKENESS_ASSIGN_OR_RETURN(text_config, ClipTextConfig::FromJson(*source.config));
      // As for the vision tower: CLIPModel sizes text_projection by the top-level value.
      if (const auto it = source.config->find("projection_dim");
          it != source.config->end() && it->is_number_integer()) {
        text_config.projection_dim = it->get<int64_t>();
      }
    } else {
      absl::StatusOr<ClipTextConfig> detected = DetectClipTextConfig(text_weights);
      if (!detected.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": CLIP text tower: ", detected.status().message()));
      }
      text_config = *detected;
    }
    if (text_config.projection_dim != vision_config.projection_dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": the text projection has width ", text_config.projection_dim,
          " but the visual projection ", vision_config.projection_dim,
          "; CLIP-T compares the two, so they must match"));
    }
  } else {
    for (const auto& [name, tensor] : text_weights) out.unexpected.push_back(name);
    text_weights.clear();
  }
  out.config.description = source.config_description;
  out.config.config = {{"vision", ClipVisionConfigToJson(vision_config)},
                       {"text", has_text ? ClipTextConfigToJson(text_config) : json()}};

  ScopedParameterOptions parameters(
      torch::TensorOptions().dtype(torch::kFloat32).device(options.device));
  LIKENESS_ASSIGN_OR_RETURN(out.vision, CreateClipVisionModel(vision_config));
  LIKENESS_ASSIGN_OR_RETURN(LoadReport vision_report,
                            LoadClipVisionStateDict(*out.vision, vision_weights, path));
  MoveTo(vision_report.unexpected, out.unexpected);
  out.vision->eval();
  if (has_text) {
    LIKENESS_RETURN_IF_ERROR(text_config.Validate());
    try {
      out.text = CLIPTextModelWithProjection(text_config);
    } catch (const c10::Error& error) {
      return absl::InternalError(absl::StrCat("building the CLIP text tower of ", path, ": ",
                                              error.what_without_backtrace()));
    }
    LIKENESS_ASSIGN_OR_RETURN(LoadReport text_report,
                              LoadClipTextStateDict(*out.text, text_weights, path));
    MoveTo(text_report.unexpected, out.unexpected);
    out.text->eval();
  }
  std::sort(out.unexpected.begin(), out.unexpected.end());
  return out;
}

absl::StatusOr<LoadedDino> LoadDino(const std::string& path, const VisionLoadOptions& options) {
  LIKENESS_ASSIGN_OR_RETURN(Source source, ReadSource(path, {kViTModelType}));
  LoadedDino out;
  out.weights_path = source.weights_path;
  StateDict weights;
  double detected_eps = ViTConfig().layer_norm_eps;
  if (HasOriginalDinoNames(source.weights)) {
    LIKENESS_ASSIGN_OR_RETURN(DinoConversion converted, ConvertOriginalDinoNames(source.weights));
    weights = std::move(converted.weights);
    out.ignored = std::move(converted.ignored);
    out.naming = kOriginalDinoNaming;
    detected_eps = kOriginalDinoLayerNormEps;
  } else {
    weights = std::move(source.weights);
    out.naming = kTransformersNaming;
  }
  for (auto it = weights.begin(); it != weights.end();) {
    if (IsOneOf(it->first, kViTIgnorableKeys)) {
      out.ignored.push_back(it->first);
      it = weights.erase(it);
    } else {
      ++it;
    }
  }
  ViTConfig config;
  if (source.config) {
    LIKENESS_ASSIGN_OR_RETURN(config, ViTConfig::FromJson(*source.config));
  } else {
    absl::StatusOr<ViTConfig> detected = DetectViTConfig(weights, detected_eps);
    if (!detected.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a DINO ViT checkpoint (", out.naming,
                       " names): ", detected.status().message()));
    }
    config = *detected;
  }
  out.config.description = source.config_description;
  out.config.config = ViTConfigToJson(config);

  ScopedParameterOptions parameters(
      torch::TensorOptions().dtype(torch::kFloat32).device(options.device));
  LIKENESS_ASSIGN_OR_RETURN(out.model, CreateViTModel(config));
  LIKENESS_ASSIGN_OR_RETURN(LoadReport report, LoadViTStateDict(*out.model, weights, path));
  out.unexpected = std::move(report.unexpected);
  out.model->eval();
  return out;
}

}  // namespace likeness::model

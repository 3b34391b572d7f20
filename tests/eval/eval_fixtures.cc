#include "tests/eval/eval_fixtures.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "common/status_macros.h"
#include "tests/test_data.h"
#include "worker/model/layers.h"
#include "worker/model/text/clip_text_model.h"

namespace likeness::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kConfigFile[] = "config.json";
constexpr char kWeightsFile[] = "model.safetensors";
constexpr int64_t kClipVocabSize = 49408;
constexpr int64_t kClipContextLength = 77;
constexpr int64_t kTinyTextLayers = 2;
constexpr int64_t kTinyTextHeads = 2;
// CLIP's initial logit_scale, ln(1 / 0.07); its value is never used by a metric.
constexpr float kLogitScale = 2.6592f;

absl::StatusOr<GoldenFile> FirstOfClass(const std::string& class_name) {
  LIKENESS_ASSIGN_OR_RETURN(std::vector<GoldenFile> files, GoldenFilesOfClass(class_name));
  return files.front();
}

absl::Status WriteConfig(const std::string& dir, const json& config) {
  return WriteFileAtomically((fs::path(dir) / kConfigFile).string(), config.dump(2));
}

absl::StatusOr<std::string> CopyGoldenFolder(const std::string& class_name,
                                             const std::string& dir) {
  LIKENESS_ASSIGN_OR_RETURN(GoldenFile golden, FirstOfClass(class_name));
  std::error_code error;
  fs::create_directories(dir, error);
  // The golden file's __input__/__output__ tensors are skipped by every weight reader.
  fs::copy_file(golden.safetensors, fs::path(dir) / kWeightsFile,
                fs::copy_options::overwrite_existing, error);
  if (error) {
    return absl::InternalError(absl::StrCat("copying ", golden.safetensors, ": ", error.message()));
  }
  LIKENESS_RETURN_IF_ERROR(WriteConfig(dir, golden.sidecar.at("config")));
  return dir;
}

}  // namespace

absl::StatusOr<std::vector<GoldenFile>> GoldenFilesOfClass(const std::string& class_name) {
  std::vector<GoldenFile> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(GoldenDir(), error)) {
    const fs::path p = entry.path();
    if (p.extension() != ".json") continue;
    const fs::path weights = fs::path(p).replace_extension(".safetensors");
    if (!fs::exists(weights)) continue;
    std::ifstream in(p);
    const json sidecar = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (sidecar.is_object() && sidecar.value("class", json()) == class_name) {
      files.push_back({p.stem().string(), weights.string(), sidecar});
    }
  }
  if (files.empty()) {
    return absl::NotFoundError(
        absl::StrCat(GoldenDir(), ": no golden file of class ", class_name));
  }
  std::sort(files.begin(), files.end(),
            [](const GoldenFile& a, const GoldenFile& b) { return a.stem < b.stem; });
  return files;
}

model::ClipTextConfig TinyClipTextConfig(int64_t hidden_size, int64_t projection_dim) {
  model::ClipTextConfig config;
  config.vocab_size = kClipVocabSize;
  config.max_position_embeddings = kClipContextLength;
  config.hidden_size = hidden_size;
  config.intermediate_size = 2 * hidden_size + 5;
  config.num_hidden_layers = kTinyTextLayers;
  config.num_attention_heads = kTinyTextHeads;
  config.projection_dim = projection_dim;
  config.hidden_act = model::ClipActivation::kQuickGelu;
  config.bos_token_id = 0;
  config.eos_token_id = model::kLegacyEosTokenId;
  config.pad_token_id = 1;
  return config;
}

model::StateDict RandomClipTextTower(const model::ClipTextConfig& config, uint64_t seed) {
  model::CLIPTextModelWithProjection text(config);
  model::InitializeRandomly(*text, seed);
  return model::ModuleStateDict(*text);
}

absl::StatusOr<std::string> WriteTinyClipVisionFolder(const std::string& dir) {
  return CopyGoldenFolder(kGoldenClipVisionClass, dir);
}

absl::StatusOr<std::string> WriteTinyDinoFolder(const std::string& dir) {
  return CopyGoldenFolder(kGoldenViTClass, dir);
}

absl::StatusOr<std::string> WriteTinyFullClipFolder(const std::string& dir) {
  LIKENESS_ASSIGN_OR_RETURN(GoldenFile golden, FirstOfClass(kGoldenClipVisionClass));
  LIKENESS_ASSIGN_OR_RETURN(std::shared_ptr<safetensors::SafetensorsFile> file,
                            safetensors::SafetensorsFile::Open(golden.safetensors));
  LIKENESS_ASSIGN_OR_RETURN(model::StateDict vision, model::ReadStateDict(*file));
  const json& vision_config = golden.sidecar.at("config");
  const int64_t hidden = vision_config.at("hidden_size").get<int64_t>();
  const int64_t projection = vision_config.at("projection_dim").get<int64_t>();
  const model::ClipTextConfig text_config = TinyClipTextConfig(hidden, projection);

  safetensors::NamedTensors tensors;
  for (auto& [name, tensor] : vision) tensors.emplace_back(name, tensor.clone());
  for (auto& [name, tensor] : RandomClipTextTower(text_config, kTinyTextTowerSeed)) {
    tensors.emplace_back(name, tensor);
  }
  tensors.emplace_back("logit_scale", torch::tensor(kLogitScale));
  // transformers before v4.31 saved these buffers; real CLIP checkpoints still carry them.
  const int64_t positions = vision.at("vision_model.embeddings.position_embedding.weight").size(0);
  tensors.emplace_back("vision_model.embeddings.position_ids",
                       torch::arange(positions, torch::kLong).view({1, -1}));
  tensors.emplace_back("text_model.embeddings.position_ids",
                       torch::arange(kClipContextLength, torch::kLong).view({1, -1}));
  std::error_code error;
  fs::create_directories(dir, error);
  LIKENESS_RETURN_IF_ERROR(
      safetensors::WriteSafetensors((fs::path(dir) / kWeightsFile).string(), tensors));

  json text = {{"model_type", "clip_text_model"},
               {"vocab_size", text_config.vocab_size},
               {"hidden_size", text_config.hidden_size},
               {"intermediate_size", text_config.intermediate_size},
               {"num_hidden_layers", text_config.num_hidden_layers},
               {"num_attention_heads", text_config.num_attention_heads},
               {"max_position_embeddings", text_config.max_position_embeddings},
               {"hidden_act", "quick_gelu"},
               {"bos_token_id", text_config.bos_token_id},
               {"eos_token_id", text_config.eos_token_id},
               {"pad_token_id", text_config.pad_token_id}};
  json vision_only = vision_config;
  // As openai's config.json: the projection width lives at the top level.
  vision_only.erase("projection_dim");
  const json config = {{"architectures", {"CLIPModel"}},
                       {"model_type", "clip"},
                       {"projection_dim", projection},
                       {"text_config", text},
                       {"vision_config", vision_only}};
  LIKENESS_RETURN_IF_ERROR(WriteConfig(dir, config));
  return dir;
}

}  // namespace likeness::testing

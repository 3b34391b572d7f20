#include "tests/train/train_test_util.h"

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "worker/image/image_io.h"
#include "worker/model/state_dict.h"

namespace likeness::testing {
namespace fs = std::filesystem;

constexpr char kSingleFileStem[] = "sdxl_single_file_tiny";

void WriteSubjectFolder(const std::string& dir, const std::vector<std::pair<int, int>>& sizes,
                        int pattern_seed) {
  fs::create_directories(dir);
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [w, h] = sizes[i];
    image::Image img = image::MakeImage(w, h, 3);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < 3; ++c) {
          // Smooth gradients plus a per-image phase: different photos, no noise.
          img.pixels[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(
              (x * (3 + c) * 4 + y * (5 - c) * 3 + static_cast<int>(i) * 37 + pattern_seed * 11) % 256);
        }
      }
    }
    char name[32];
    std::snprintf(name, sizeof(name), "%02zu.png", i);
    ASSERT_TRUE(image::WritePngFile((fs::path(dir) / name).string(), img).ok());
  }
  ASSERT_TRUE(WriteFileAtomically((fs::path(dir) / "00.txt").string(),
                                  "a sks dog on a sofa\n").ok());
}

std::string TinyModelPath() { return GoldenDir() + "/" + kSingleFileStem + ".safetensors"; }

std::string TinyModelConfigJson() {
  std::ifstream in(GoldenDir() + "/" + kSingleFileStem + ".json");
  return nlohmann::json::parse(in)["config"].dump();
}

v1::TrainConfig TinyTrainConfig(v1::TrainMethod method, const std::string& subject_dir,
                                const std::string& output_dir) {
  v1::TrainConfig c;
  c.set_method(method);
  c.set_base_model(TinyModelPath());
  c.set_model_config(TinyModelConfigJson());
  c.set_vocab(BpeVocabPath());
  c.set_instance_dir(subject_dir);
  c.set_instance_prompt("a photo of {identifier} dog");
  c.set_resolution(kTinyResolution);
  c.set_output_dir(output_dir);
  c.set_steps(4);
  c.set_seed(7);
  c.set_learning_rate(1e-3);  // large, so one step visibly moves the tiny models
  c.set_ti_init_word("dog");
  c.set_identifier("sks");
  return c;
}

absl::StatusOr<std::unique_ptr<train::Trainer>> MakeTinyTrainer(const train::TrainSettings& settings,
                                                                train::TrainHooks hooks,
                                                                model::SdxlModels* models_out) {
  nlohmann::json config = nlohmann::json::parse(settings.model_config);
  model::SdxlLoadReport report;
  absl::StatusOr<model::SdxlModels> models =
      model::LoadSdxlModels(settings.base_model, {}, &report, config);
  if (!models.ok()) return models.status();
  if (models_out != nullptr) *models_out = *models;  // shares the modules
  absl::StatusOr<text::ClipTokenizer> tokenizer = text::ClipTokenizer::Load(settings.vocab);
  if (!tokenizer.ok()) return tokenizer.status();
  absl::StatusOr<std::string> key = train::ModelKey(settings.base_model, settings.model_config);
  if (!key.ok()) return key.status();
  return train::Trainer::Create(settings, *std::move(models),
                                std::make_shared<const text::ClipTokenizer>(*std::move(tokenizer)),
                                *key, std::move(hooks));
}

std::map<std::string, torch::Tensor> SnapshotModels(model::SdxlModels& models) {
  std::map<std::string, torch::Tensor> out;
  for (const char* component : model::kSdxlComponents) {
    for (const auto& [name, t] : model::ModuleStateDict(*models.Component(component))) {
      out[std::string(component) + "." + name] = t.detach().clone();
    }
  }
  return out;
}

}  // namespace likeness::testing

#include "worker/train/validation.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/generate/generate_settings.h"
#include "worker/generate/pipeline.h"
#include "worker/image/image_io.h"

namespace likeness::train {
namespace fs = std::filesystem;
namespace {

// Restores each module's training flag when validation ends.
class EvalScope {
 public:
  explicit EvalScope(std::vector<torch::nn::Module*> modules) : modules_(std::move(modules)) {
    for (torch::nn::Module* m : modules_) {
      was_training_.push_back(m->is_training());
      m->eval();
    }
  }
  ~EvalScope() {
    for (size_t i = 0; i < modules_.size(); ++i) modules_[i]->train(was_training_[i]);
  }

 private:
  std::vector<torch::nn::Module*> modules_;
  std::vector<bool> was_training_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> WriteValidationImages(
    const TrainSettings& settings, int64_t step, model::SdxlModels& models,
    std::shared_ptr<const text::ClipTokenizer> tokenizer,
    embeddings::SdxlTextualInversion* textual_inversion) {
  v1::GenerateConfig config;
  for (const std::string& prompt : settings.validation_prompts) config.add_prompts(prompt);
  config.set_steps(kValidationSteps);
  config.set_seed(settings.seed);
  config.set_width(settings.resolution);
  config.set_height(settings.resolution);
  LIKENESS_ASSIGN_OR_RETURN(generate::GenerationSettings generation,
                            generate::ResolveGenerateConfig(config));
  generate::ModelInfo info;
  info.name = fs::path(settings.base_model).stem().string();
  generate::Pipeline pipeline(models, std::move(tokenizer), info, "likeness train");
  if (textual_inversion != nullptr) {
    pipeline.SetPromptTokenizer(
        [textual_inversion](const std::vector<std::string>& prompts)
            -> absl::StatusOr<generate::PromptTokenIds> {
          const embeddings::SdxlPromptIds ids = textual_inversion->Tokenize(prompts);
          generate::PromptTokenIds out;
          out.ids_1 = ids.ids_1;
          out.ids_2 = ids.ids_2;
          return out;
        });
  }
  EvalScope eval({models.unet.get(), models.vae.get(), models.text_encoder.get(),
                  models.text_encoder_2.get()});
  LIKENESS_ASSIGN_OR_RETURN(std::vector<generate::GeneratedImage> images,
                            pipeline.Generate(generation));
  const fs::path dir =
      fs::path(settings.output_dir) / kValidationFolder / absl::StrCat("step-", step);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("create ", dir.string(), ": ", error.message()));
  }
  std::vector<std::string> paths;
  for (const generate::GeneratedImage& image : images) {
    const std::string path =
        (dir / absl::StrCat(image.prompt_index, "_", image.image_index, ".png")).string();
    image::PngText text;
    if (auto it = image.image.text.find("parameters"); it != image.image.text.end()) {
      text.emplace_back("parameters", it->second);
    }
    LIKENESS_RETURN_IF_ERROR(image::WritePngFile(path, image.image, text));
    paths.push_back(path);
  }
  return paths;
}

}  // namespace likeness::train

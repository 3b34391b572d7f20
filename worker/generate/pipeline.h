// The SDXL generation pipeline: text-to-image, img2img and inpainting on one set of loaded
// models, the images returned with their AUTOMATIC1111 parameters.
//
// Seeds: image i (0-based) of every prompt uses seed + i, drawn from its own CPU generator:
//   1. the starting noise [1, C, h, w] (float32, on the CPU, then moved to the device);
//   2. then, in order, each step's noise (ancestral samplers) and RePaint's re-noising.
// So the same seed, settings and device give the same image bit for bit, whatever the batch
// size; and the same seed starts from the same noise on CPU and CUDA. The images still differ
// between devices (and between fp32 and bf16) because the UNet's arithmetic does: CUDA
// kernels sum in other orders. The init image's VAE posterior sample uses a generator seeded
// with `seed` itself.
#ifndef LIKENESS_WORKER_GENERATE_PIPELINE_H_
#define LIKENESS_WORKER_GENERATE_PIPELINE_H_

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "worker/generate/a1111_parameters.h"
#include "worker/generate/conditioning.h"
#include "worker/generate/generate_settings.h"
#include "worker/image/image.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/sample/scheduler.h"

namespace likeness::generate {

struct PipelineOptions {
  std::string model_path;  // diffusers folder or single-file checkpoint
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  std::string variant;     // diffusers weight variant ("fp16")
  // The CLIP vocabulary when the model has no tokenizer/ folder (single files never do).
  std::string vocab_path;
  nlohmann::json config_override = nullptr;  // per component, see LoadSdxlModels
  std::string software = "likeness";  // "Version:" in the parameters
  bool hash_model = true;             // compute A1111's model hash (cached after the first time)
};

struct ModelInfo {
  std::string name;        // folder name or file stem: A1111's "Model:"
  std::string short_hash;  // A1111's "Model hash:"; empty when not computed
  sample::SchedulerConfig scheduler = sample::SchedulerConfig::SdxlBase();
};

struct GeneratedImage {
  image::Image image;  // RGB8, text["parameters"] set
  std::string prompt;
  uint64_t seed = 0;
  int prompt_index = 0;
  int image_index = 0;  // within its prompt
  A1111Parameters parameters;
};

struct GenerateProgress {
  int prompt_index = 0;
  int num_prompts = 0;
  int images_done = 0;   // of this prompt, before the current batch
  int images_total = 0;  // of this prompt
  int64_t evaluations_done = 0;  // UNet evaluations of the current batch
  int64_t evaluations_total = 0;
};
using ProgressCallback = std::function<void(const GenerateProgress&)>;

class Pipeline {
 public:
  // Loads the model (LoadSdxlModels), its scheduler config and tokenizer.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Load(const PipelineOptions& options);

  // Around models already in memory (the trainer's validation images, tests).
  Pipeline(model::SdxlModels models, std::shared_ptr<const text::ClipTokenizer> tokenizer,
           ModelInfo info, std::string software = "likeness");

  model::SdxlModels& models() { return models_; }
  const ModelInfo& info() const { return info_; }
  // Replaces the prompt tokenizer (textual-inversion embeddings add tokens).
  void SetPromptTokenizer(PromptTokenizer tokenizer) { tokenizer_ = std::move(tokenizer); }
  std::shared_ptr<const text::ClipTokenizer> clip_tokenizer() const { return clip_tokenizer_; }
  // Records a LoRA applied to models() for the images' parameters (name, scale, hash).
  void AddLoraRecord(A1111Parameters::Lora lora) { loras_.push_back(std::move(lora)); }
  // Keeps `object` alive as long as the pipeline: what is attached to models() (a LoRA set,
  // textual-inversion tokens) and must be detached before the models go.
  void Own(std::shared_ptr<void> object) { owned_.push_back(std::move(object)); }
  // Extra "Key: value" pairs written into every image's parameters.
  void AddParameterField(std::string key, std::string value) {
    extra_fields_.emplace_back(std::move(key), std::move(value));
  }

  // The images of prompt `prompt_index` of `settings`. INVALID_ARGUMENT naming the setting or
  // file at fault; nothing is written to disk here.
  absl::StatusOr<std::vector<GeneratedImage>> GeneratePrompt(const GenerationSettings& settings,
                                                             int prompt_index,
                                                             const ProgressCallback& progress = {});

  // Every prompt in turn.
  absl::StatusOr<std::vector<GeneratedImage>> Generate(const GenerationSettings& settings,
                                                       const ProgressCallback& progress = {});

  // Width and height must be multiples of this: the VAE factor times the UNet's downsamplings.
  int SizeMultiple() const;
  // The model's native resolution (SDXL: 1024).
  int NativeSize() const;

 private:
  model::SdxlModels models_;
  std::shared_ptr<const text::ClipTokenizer> clip_tokenizer_;
  PromptTokenizer tokenizer_;
  ModelInfo info_;
  std::string software_;
  std::vector<A1111Parameters::Lora> loras_;
  std::vector<std::pair<std::string, std::string>> extra_fields_;
  // Declared last: destroyed (detached) before models_.
  std::vector<std::shared_ptr<void>> owned_;
};

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_PIPELINE_H_

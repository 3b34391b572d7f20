// A train config (protos/likeness.proto TrainConfig, from YAML, flags or the coordinator)
// checked and completed with defaults: what the trainer runs. Every default is a named
// constant here, and every error names the field ("train: batch_size: 0 is outside [1, 256]").
#ifndef LIKENESS_WORKER_TRAIN_TRAIN_SETTINGS_H_
#define LIKENESS_WORKER_TRAIN_TRAIN_SETTINGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protos/likeness.pb.h"
#include "worker/train/lr_schedule.h"

namespace likeness::train {

enum class Method { kLora, kDreamBooth, kTextualInversion, kPivotalTuning };
const char* MethodName(Method method);  // "lora", "dreambooth", ...

enum class Prediction { kEpsilon, kVPrediction };
enum class MixedPrecision { kNo, kBf16 };

// Learning rates of diffusers' SDXL scripts: 1e-4 for LoRA (train_dreambooth_lora_sdxl.py),
// 5e-6 for a full UNet fine-tune (train_dreambooth.py), 5e-4 for textual inversion vectors
// (textual_inversion_sdxl.py), which move much further from their init than weights do.
inline constexpr double kDefaultLoraLearningRate = 1e-4;
inline constexpr double kDefaultFullLearningRate = 5e-6;
inline constexpr double kDefaultEmbeddingLearningRate = 5e-4;
// torch.optim.AdamW's defaults except the weight decay, which diffusers' scripts set to 1e-2
// for weights; embeddings get none by default (decay pulls them toward zero, off the token
// manifold they were initialised on).
inline constexpr double kDefaultAdamBeta1 = 0.9;
inline constexpr double kDefaultAdamBeta2 = 0.999;
inline constexpr double kDefaultAdamEpsilon = 1e-8;
inline constexpr double kDefaultAdamWeightDecay = 1e-2;
inline constexpr double kDefaultEmbeddingWeightDecay = 0.0;
inline constexpr double kDefaultMaxGradNorm = 1.0;  // diffusers' --max_grad_norm
inline constexpr int kDefaultSteps = 500;
inline constexpr int kDefaultBatchSize = 1;
inline constexpr int kDefaultResolution = 1024;  // SDXL's native size
inline constexpr double kDefaultPriorLossWeight = 1.0;
inline constexpr int kDefaultTiNumVectors = 1;
// Pivotal tuning (cog-sdxl, diffusers' advanced script): the embedding settles first, then
// LoRA builds on it; half the run is their default.
inline constexpr double kDefaultPivotalEmbeddingFraction = 0.5;
// Ten consecutive non-finite losses mean diverged weights, not an unlucky batch.
inline constexpr int kDefaultMaxConsecutiveNanSkips = 10;
inline constexpr char kDefaultIdentifier[] = "sks";  // DreamBooth's rare token
inline constexpr char kDefaultCacheSubdir[] = "cache";
// Bounds that catch typos before they cost a GPU-day.
inline constexpr int kMaxSteps = 1000000;
inline constexpr int kMaxBatchSize = 256;
inline constexpr int kMaxAccumulation = 1024;
inline constexpr int kMinResolution = 8;
inline constexpr int kMaxResolution = 4096;
inline constexpr int kMaxLoraRank = 1024;
inline constexpr int kMaxTiVectors = 75;  // a CLIP prompt holds 75 tokens between its specials

struct AdamWSettings {
  double beta1 = kDefaultAdamBeta1;
  double beta2 = kDefaultAdamBeta2;
  double epsilon = kDefaultAdamEpsilon;
  double weight_decay = kDefaultAdamWeightDecay;
  double embedding_weight_decay = kDefaultEmbeddingWeightDecay;
};

struct LoraSettings {
  int rank = 4;
  double alpha = 0.0;  // 0: alpha = rank
  double dropout = 0.0;
  std::vector<std::string> unet_targets;          // empty: lora::LoraTargets::Default()
  std::vector<std::string> text_encoder_targets;  // empty: no text-encoder LoRA
};

struct TrainSettings {
  Method method = Method::kLora;
  std::string base_model;
  std::string model_config;  // JSON, see GenerateConfig.model_config
  std::string vocab;
  std::string device = "cpu";
  MixedPrecision mixed_precision = MixedPrecision::kNo;

  // Data.
  std::string instance_dir;
  std::string instance_prompt;  // identifier already substituted
  std::string identifier;
  std::string caption_template;  // "{identifier}" substituted; "{caption}" left for per image
  std::string class_dir;         // empty: no prior preservation
  std::string class_prompt;
  int num_class_images = 0;
  double prior_loss_weight = kDefaultPriorLossWeight;
  int resolution = kDefaultResolution;
  bool bucketing = true;
  bool random_flip = false;
  std::string cache_dir;

  // Optimisation.
  uint64_t seed = 0;
  int steps = kDefaultSteps;
  int batch_size = kDefaultBatchSize;
  int gradient_accumulation_steps = 1;
  double learning_rate = 0.0;               // UNet (LoRA or full)
  double text_encoder_learning_rate = 0.0;  // text encoders (LoRA or full)
  double embedding_learning_rate = kDefaultEmbeddingLearningRate;
  LrScheduleSettings lr_schedule;
  AdamWSettings adamw;
  double max_grad_norm = kDefaultMaxGradNorm;
  double snr_gamma = 0.0;
  double noise_offset = 0.0;
  Prediction prediction = Prediction::kEpsilon;
  double ema_decay = 0.0;
  bool gradient_checkpointing = false;

  // Methods.
  LoraSettings lora;
  bool train_text_encoder = false;
  std::string ti_init_word;
  int ti_num_vectors = kDefaultTiNumVectors;
  double pivotal_embedding_fraction = kDefaultPivotalEmbeddingFraction;
  bool pivotal_keep_training_embedding = false;
  bool save_peft_lora = false;

  // Run.
  std::string output_dir;
  int checkpoint_every = 0;
  int validation_every = 0;
  std::vector<std::string> validation_prompts;
  int max_consecutive_nan_skips = kDefaultMaxConsecutiveNanSkips;
  bool resume = false;
  int checkpoints_to_keep = 0;

  bool trains_lora() const { return method == Method::kLora || method == Method::kPivotalTuning; }
  bool trains_embedding() const {
    return method == Method::kTextualInversion || method == Method::kPivotalTuning;
  }
  bool prior_preservation() const { return !class_dir.empty(); }
  // The step at which pivotal tuning stops training the embedding (steps when it never does).
  int EmbeddingStopStep() const;
};

// Checks every field and fills defaults. INVALID_ARGUMENT naming the field and value.
absl::StatusOr<TrainSettings> ResolveTrainConfig(const v1::TrainConfig& config);

// "{identifier}" replaced by `identifier` everywhere in `text`.
std::string SubstituteIdentifier(const std::string& text, const std::string& identifier);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_TRAIN_SETTINGS_H_

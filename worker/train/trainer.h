// Subject fine-tuning of SDXL (issue 4): DreamBooth (full UNet, optionally the text encoders),
// LoRA, textual inversion and pivotal tuning, on one process; the data-parallel issue plugs a
// GradientReducer into the same step.
//
// One optimizer step (Trainer::Step), in order:
//   1. pivotal tuning past its embedding phase: the embedding group is frozen;
//   2. for each of gradient_accumulation_steps micro-batches (data_order.h): cached latents
//      (latent_cache.h) of the batch's instance images (and as many class images, in the same
//      bucket, for prior preservation), noise and timesteps drawn from the run's CPU generator,
//      the UNet's prediction, the float32 loss (diffusion_loss.h) / accumulation, backward;
//   3. GradientReducer::ReduceGradients on the trainable tensors' gradients, in AdamW order;
//   4. NaN/Inf check of the loss and the gradients' total norm (agreed through the reducer):
//      a non-finite step is skipped (no update) and counted; max_consecutive_nan_skips in a
//      row ends the run with FAILED_PRECONDITION;
//   5. gradient clipping (max_grad_norm), AdamW at base_lr * LrFactor(step), EMA update.
// A skipped step still consumes its data and its schedule step, so step s always reads the
// same batches and has the same learning rate, skipped or not.
// Data parallel (issue 6, worker/dist/): a step consumes world * gradient_accumulation_steps
// batches from the checkpointed data position; rank r runs its accumulation_steps of them and
// draws the other ranks' noise, so R ranks train exactly what one process with R times the
// accumulation trains. Rank 0 alone writes metrics, checkpoints and validation images.
// Run() adds validation images every validation_every steps (validation.h) and checkpoints
// every checkpoint_every steps and at the end (checkpoint.h's commit sequence).
//
// Determinism: noise and timesteps come from one CPU torch generator seeded with `seed` (and
// LoRA dropout from libtorch's default CPU generator, which the trainer seeds and checkpoints
// too); the data order is a pure function of seed and position. A checkpoint stores the
// trainable tensors, AdamW's moments and steps, the EMA, both generators' states, the step,
// the skip counters and the smoothed loss, so Resume + the remaining steps gives the same
// bits as an uninterrupted run (on the same build and device).
#ifndef LIKENESS_WORKER_TRAIN_TRAINER_H_
#define LIKENESS_WORKER_TRAIN_TRAINER_H_

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/embeddings/textual_inversion.h"
#include "worker/lora/lora_network.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/sample/noise_schedule.h"
#include "worker/text/clip_tokenizer.h"
#include "worker/train/data_order.h"
#include "worker/train/diffusion_loss.h"
#include "worker/train/gradient_reducer.h"
#include "worker/train/latent_cache.h"
#include "worker/train/metrics.h"
#include "worker/train/optimizer.h"
#include "worker/train/train_data.h"
#include "worker/train/train_settings.h"

namespace likeness::train {

// Files of a checkpoint folder (beside manifest.json).
inline constexpr char kLoraFileName[] = "lora.safetensors";            // kohya
inline constexpr char kPeftLoraFileName[] = "lora_peft.safetensors";   // PEFT/diffusers
inline constexpr char kUnetFileName[] = "unet.safetensors";            // DreamBooth
inline constexpr char kTextEncoderFileName[] = "text_encoder.safetensors";
inline constexpr char kTextEncoder2FileName[] = "text_encoder_2.safetensors";
inline constexpr char kStateTensorsName[] = "trainer_state.safetensors";
inline constexpr char kStateJsonName[] = "trainer_state.json";
// The embedding is "<identifier>.safetensors" (clip_l / clip_g), as A1111 names it by file.

struct TrainProgress {
  int64_t step = 0;  // optimizer steps done
  int64_t total_steps = 0;
  double loss = 0.0;
  double smoothed_loss = 0.0;
  double lr = 0.0;
  double images_per_second = 0.0;
  int64_t skipped_steps = 0;
  std::string event;  // "step", "checkpoint <dir>", "resumed <dir>", "caching"
};

struct TrainHooks {
  std::function<void(const TrainProgress&)> progress;
  // Not owned; null: SingleProcessReducer.
  GradientReducer* reducer = nullptr;
  // Failure injection for tests: the loss of these steps (0-based) is made NaN.
  std::set<int64_t> nan_loss_steps;
  // Polled after every step (data parallel: agreed by all ranks); true (a scheduler's
  // preemption signal, dist/requeue.h) makes Run checkpoint and return ABORTED marked
  // requeue.
  std::function<bool()> stop_requested;
};

class Trainer {
 public:
  // Sets up what `settings` trains on `models` (which the trainer then owns): freezes the
  // rest, attaches LoRA / textual inversion, lists the data and fills the cache.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(
      const TrainSettings& settings, model::SdxlModels models,
      std::shared_ptr<const text::ClipTokenizer> tokenizer, std::string model_key,
      TrainHooks hooks = {});
  ~Trainer();

  // One optimizer step (see the header comment).
  absl::Status Step();
  // Steps until settings.steps, checkpointing every checkpoint_every and at the end.
  absl::Status Run();
  // Writes step-<step()>/ (checkpoint.h's commit sequence). Returns the folder.
  absl::StatusOr<std::string> SaveCheckpoint();
  // Restores everything SaveCheckpoint wrote, from a complete checkpoint folder.
  absl::Status Resume(const std::string& checkpoint_dir);
  // Validation images at the current step (validation.h).
  absl::Status Validate();
  // DreamBooth: <output_dir>/export/ (full_export.h) from the current weights (the EMA's when
  // on); `checkpoint_dir` is the just-saved checkpoint whose files the export hard-links.
  absl::StatusOr<std::string> ExportFullModel(const std::string& checkpoint_dir);

  int64_t step() const { return step_; }
  int64_t skipped_steps() const { return skipped_; }
  double smoothed_loss() const { return smoothed_loss_; }
  // Loss of every step run by this object, indexed by step (NaN for skipped ones; steps before
  // a resume are absent).
  const std::map<int64_t, double>& losses() const { return losses_; }
  // The trainable tensors in optimizer order, with their names ("<group>/<name>").
  const std::vector<std::string>& param_names() const { return param_names_; }
  std::vector<torch::Tensor> params() const { return optimizer_->AllParams(); }
  AdamW& optimizer() { return *optimizer_; }
  const Ema& ema() const { return ema_; }
  model::SdxlModels& models() { return models_; }
  lora::LoraNetwork* lora() { return lora_.get(); }
  embeddings::SdxlTextualInversion* textual_inversion() { return ti_.get(); }
  LatentCache& cache() { return *cache_; }
  const std::vector<Bucket>& buckets() const { return buckets_; }
  const std::vector<TrainImage>& instance_images() const { return instance_; }
  const TrainSettings& settings() const { return settings_; }

 private:
  Trainer(const TrainSettings& settings, model::SdxlModels models,
          std::shared_ptr<const text::ClipTokenizer> tokenizer, TrainHooks hooks);
  // Prior preservation: counts class_dir's photos and generates the missing ones
  // (class_images.h) into generated_class_dir_.
  absl::Status PrepareClassImages(const std::string& model_key);
  absl::Status SetUpTrainables();
  absl::Status SetUpData(const std::string& model_key);
  absl::StatusOr<DiffusionLoss> MicroBatchLoss(int64_t batch_index);
  // Noise and timesteps for latents of `shape` [B, C, h, w], drawn from generator_.
  std::pair<torch::Tensor, torch::Tensor> DrawNoise(at::IntArrayRef shape);
  // Another rank's micro-batch: only its draws from generator_ (data parallelism).
  absl::Status SkipMicroBatch(int64_t batch_index);
  absl::StatusOr<model::SdxlPromptEmbeds> Conditioning(const std::vector<std::string>& captions);
  void ApplyPhase();
  void Report(const std::string& event, double loss, double lr, double images_per_second);

  TrainSettings settings_;
  std::string model_key_;  // ModelKey of the base model: part of the settings fingerprint
  TrainHooks hooks_;
  torch::Device device_;
  torch::Dtype dtype_;
  // models_ before lora_ / ti_: members are destroyed in reverse, so the adapters come off
  // the layers while the models still live.
  model::SdxlModels models_;
  std::shared_ptr<const text::ClipTokenizer> tokenizer_;
  std::unique_ptr<lora::LoraNetwork> lora_;
  std::unique_ptr<embeddings::SdxlTextualInversion> ti_;
  std::vector<std::string> param_names_;
  std::unique_ptr<AdamW> optimizer_;
  Ema ema_;
  sample::NoiseSchedule schedule_;
  bool text_trains_ = false;
  std::vector<Bucket> buckets_;
  std::vector<TrainImage> instance_;
  std::vector<TrainImage> class_;
  int num_given_class_images_ = 0;   // photos in class_dir
  std::string generated_class_dir_;  // class_images.h's folder, when some were generated
  std::unique_ptr<DataOrder> order_;
  std::unique_ptr<LatentCache> cache_;
  torch::Generator generator_;
  SingleProcessReducer single_process_;
  GradientReducer* reducer_ = nullptr;
  std::optional<MetricsWriter> metrics_;
  int64_t step_ = 0;
  // Batches consumed by all ranks together (checkpointed: a resume on another number of
  // ranks goes on from the same data position).
  int64_t data_position_ = 0;
  int64_t skipped_ = 0;
  int64_t consecutive_skips_ = 0;
  double smoothed_loss_ = 0.0;
  bool has_smoothed_loss_ = false;
  std::map<int64_t, double> losses_;
};

struct TrainResult {
  int64_t steps = 0;
  int64_t skipped_steps = 0;
  std::string final_checkpoint;
  double final_smoothed_loss = 0.0;
};

// The library entry point of `likeness train` and the coordinator's train jobs: loads the base
// model and tokenizer, resumes from the latest complete checkpoint when settings.resume, runs.
absl::StatusOr<TrainResult> RunTraining(const TrainSettings& settings, const TrainHooks& hooks = {});

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_TRAINER_H_

#include "worker/train/train_settings.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace likeness::train {
namespace {

constexpr char kIdentifierPlaceholder[] = "{identifier}";

template <typename T>
absl::Status Range(const char* field, T value, T low, T high) {
  if (!(value >= low && value <= high)) {
    return absl::InvalidArgumentError(
        absl::StrCat("train: ", field, ": ", value, " is outside [", low, ", ", high, "]"));
  }
  return absl::OkStatus();
}

absl::Status Required(const char* field, const std::string& value, const char* why) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat("train: ", field, ": ", why));
  return absl::OkStatus();
}

#define LIKENESS_TRAIN_CHECK(expr)     \
  do {                                 \
    absl::Status check_status = (expr); \
    if (!check_status.ok()) return check_status; \
  } while (false)

}  // namespace

const char* MethodName(Method method) {
  switch (method) {
    case Method::kLora: return "lora";
    case Method::kDreamBooth: return "dreambooth";
    case Method::kTextualInversion: return "textual_inversion";
    case Method::kPivotalTuning: return "pivotal_tuning";
  }
  return "?";
}

std::string SubstituteIdentifier(const std::string& text, const std::string& identifier) {
  return absl::StrReplaceAll(text, {{kIdentifierPlaceholder, identifier}});
}

int TrainSettings::EmbeddingStopStep() const {
  if (method != Method::kPivotalTuning || pivotal_keep_training_embedding) return steps;
  return static_cast<int>(std::ceil(pivotal_embedding_fraction * steps));
}

absl::StatusOr<TrainSettings> ResolveTrainConfig(const v1::TrainConfig& c) {
  TrainSettings s;
  switch (c.method()) {
    case v1::TRAIN_METHOD_LORA: s.method = Method::kLora; break;
    case v1::TRAIN_METHOD_DREAMBOOTH: s.method = Method::kDreamBooth; break;
    case v1::TRAIN_METHOD_TEXTUAL_INVERSION: s.method = Method::kTextualInversion; break;
    case v1::TRAIN_METHOD_PIVOTAL_TUNING: s.method = Method::kPivotalTuning; break;
    default:
      return absl::InvalidArgumentError(
          "train: method: required (lora, dreambooth, textual_inversion, pivotal_tuning)");
  }
  s.base_model = c.base_model();
  LIKENESS_TRAIN_CHECK(Required("base_model", s.base_model,
                                "required (a diffusers folder or a single-file checkpoint)"));
  s.model_config = c.model_config();
  s.vocab = c.vocab();
  s.device = c.device().empty() ? "cpu" : c.device();
  if (c.mixed_precision().empty() || c.mixed_precision() == "no") {
    s.mixed_precision = MixedPrecision::kNo;
  } else if (c.mixed_precision() == "bf16") {
    s.mixed_precision = MixedPrecision::kBf16;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("train: mixed_precision: '", c.mixed_precision(), "' is not no or bf16"));
  }
  if (s.mixed_precision == MixedPrecision::kBf16 && s.method == Method::kDreamBooth &&
      s.device.rfind("cuda", 0) != 0) {
    // Full fine-tuning needs float32 master weights (bf16 weights lose small updates), so its
    // bf16 is CUDA autocast; the CPU has no such path here.
    return absl::InvalidArgumentError(
        "train: mixed_precision: bf16 for dreambooth is CUDA autocast over float32 weights; on "
        "the CPU use no");
  }

  // Data.
  s.identifier = c.identifier().empty() ? kDefaultIdentifier : c.identifier();
  s.instance_dir = c.instance_dir();
  LIKENESS_TRAIN_CHECK(Required("instance_dir", s.instance_dir, "required (the subject's photos)"));
  s.instance_prompt = SubstituteIdentifier(c.instance_prompt(), s.identifier);
  s.caption_template = SubstituteIdentifier(c.caption_template(), s.identifier);
  if (s.instance_prompt.empty() && s.caption_template.empty()) {
    return absl::InvalidArgumentError(
        "train: instance_prompt: required unless caption_template is given");
  }
  s.class_dir = c.class_dir();
  s.class_prompt = c.class_prompt();
  s.num_class_images = c.num_class_images();
  LIKENESS_TRAIN_CHECK(Range("num_class_images", s.num_class_images, 0, 100000));
  if (!s.class_dir.empty() && s.class_prompt.empty()) {
    return absl::InvalidArgumentError("train: class_prompt: prior preservation (class_dir) needs it");
  }
  if (s.class_dir.empty() && (s.num_class_images > 0 || c.has_prior_loss_weight())) {
    return absl::InvalidArgumentError(
        "train: class_dir: num_class_images / prior_loss_weight need class images");
  }
  s.prior_loss_weight = c.has_prior_loss_weight() ? c.prior_loss_weight() : kDefaultPriorLossWeight;
  LIKENESS_TRAIN_CHECK(Range("prior_loss_weight", s.prior_loss_weight, 0.0, 100.0));
  s.resolution = c.resolution() == 0 ? kDefaultResolution : c.resolution();
  LIKENESS_TRAIN_CHECK(Range("resolution", s.resolution, kMinResolution, kMaxResolution));
  s.bucketing = c.has_bucketing() ? c.bucketing() : true;
  s.random_flip = c.random_flip();
  s.output_dir = c.output_dir();
  LIKENESS_TRAIN_CHECK(Required("output_dir", s.output_dir, "required"));
  s.cache_dir = c.cache_dir().empty() ? absl::StrCat(s.output_dir, "/", kDefaultCacheSubdir)
                                      : c.cache_dir();

  // Optimisation.
  s.seed = c.seed();
  s.steps = c.steps() == 0 ? kDefaultSteps : c.steps();
  LIKENESS_TRAIN_CHECK(Range("steps", s.steps, 1, kMaxSteps));
  s.batch_size = c.batch_size() == 0 ? kDefaultBatchSize : c.batch_size();
  LIKENESS_TRAIN_CHECK(Range("batch_size", s.batch_size, 1, kMaxBatchSize));
  s.gradient_accumulation_steps =
      c.gradient_accumulation_steps() == 0 ? 1 : c.gradient_accumulation_steps();
  LIKENESS_TRAIN_CHECK(
      Range("gradient_accumulation_steps", s.gradient_accumulation_steps, 1, kMaxAccumulation));
  const double default_lr = s.method == Method::kDreamBooth ? kDefaultFullLearningRate
                                                             : kDefaultLoraLearningRate;
  s.learning_rate = c.learning_rate() == 0.0 ? default_lr : c.learning_rate();
  LIKENESS_TRAIN_CHECK(Range("learning_rate", s.learning_rate, 0.0, 1.0));
  s.text_encoder_learning_rate =
      c.has_text_encoder_learning_rate() ? c.text_encoder_learning_rate() : s.learning_rate;
  LIKENESS_TRAIN_CHECK(
      Range("text_encoder_learning_rate", s.text_encoder_learning_rate, 0.0, 1.0));
  s.embedding_learning_rate = c.has_embedding_learning_rate() ? c.embedding_learning_rate()
                                                              : kDefaultEmbeddingLearningRate;
  LIKENESS_TRAIN_CHECK(Range("embedding_learning_rate", s.embedding_learning_rate, 0.0, 1.0));
  if (!c.lr_scheduler().empty()) {
    absl::StatusOr<LrScheduleKind> kind = ParseLrScheduleKind(c.lr_scheduler());
    if (!kind.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("train: lr_scheduler: ", kind.status().message()));
    }
    s.lr_schedule.kind = *kind;
  }
  s.lr_schedule.warmup_steps = c.lr_warmup_steps();
  LIKENESS_TRAIN_CHECK(Range("lr_warmup_steps", c.lr_warmup_steps(), 0, s.steps));
  s.lr_schedule.total_steps = s.steps;
  if (c.has_adam_beta1()) s.adamw.beta1 = c.adam_beta1();
  if (c.has_adam_beta2()) s.adamw.beta2 = c.adam_beta2();
  if (c.has_adam_epsilon()) s.adamw.epsilon = c.adam_epsilon();
  if (c.has_adam_weight_decay()) s.adamw.weight_decay = c.adam_weight_decay();
  if (c.has_embedding_weight_decay()) s.adamw.embedding_weight_decay = c.embedding_weight_decay();
  // Betas of exactly 1 freeze the moments at zero and divide by a zero bias correction.
  LIKENESS_TRAIN_CHECK(Range("adam_beta1", s.adamw.beta1, 0.0, 0.999999));
  LIKENESS_TRAIN_CHECK(Range("adam_beta2", s.adamw.beta2, 0.0, 0.999999));
  LIKENESS_TRAIN_CHECK(Range("adam_epsilon", s.adamw.epsilon, 0.0, 1.0));
  LIKENESS_TRAIN_CHECK(Range("adam_weight_decay", s.adamw.weight_decay, 0.0, 10.0));
  LIKENESS_TRAIN_CHECK(
      Range("embedding_weight_decay", s.adamw.embedding_weight_decay, 0.0, 10.0));
  s.max_grad_norm = c.has_max_grad_norm() ? c.max_grad_norm() : kDefaultMaxGradNorm;
  LIKENESS_TRAIN_CHECK(Range("max_grad_norm", s.max_grad_norm, 0.0, 1e6));
  s.snr_gamma = c.snr_gamma();
  LIKENESS_TRAIN_CHECK(Range("snr_gamma", s.snr_gamma, 0.0, 1e3));
  s.noise_offset = c.noise_offset();
  LIKENESS_TRAIN_CHECK(Range("noise_offset", s.noise_offset, 0.0, 1.0));
  if (c.prediction_type().empty() || c.prediction_type() == "epsilon") {
    s.prediction = Prediction::kEpsilon;
  } else if (c.prediction_type() == "v_prediction") {
    s.prediction = Prediction::kVPrediction;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "train: prediction_type: '", c.prediction_type(), "' is not epsilon or v_prediction"));
  }
  s.ema_decay = c.ema_decay();
  LIKENESS_TRAIN_CHECK(Range("ema_decay", s.ema_decay, 0.0, 0.999999));
  s.gradient_checkpointing = c.gradient_checkpointing();

  // Methods.
  s.lora.rank = c.lora_rank() == 0 ? 4 : c.lora_rank();
  LIKENESS_TRAIN_CHECK(Range("lora_rank", s.lora.rank, 1, kMaxLoraRank));
  s.lora.alpha = c.lora_alpha();
  LIKENESS_TRAIN_CHECK(Range("lora_alpha", s.lora.alpha, 0.0, 1e6));
  s.lora.dropout = c.lora_dropout();
  LIKENESS_TRAIN_CHECK(Range("lora_dropout", s.lora.dropout, 0.0, 0.99));
  s.lora.unet_targets.assign(c.lora_unet_targets().begin(), c.lora_unet_targets().end());
  s.lora.text_encoder_targets.assign(c.lora_text_encoder_targets().begin(),
                                     c.lora_text_encoder_targets().end());
  if (!s.trains_lora() && (c.lora_rank() != 0 || c.lora_unet_targets_size() > 0 ||
                           c.lora_text_encoder_targets_size() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train: lora_rank / lora_*_targets: method ", MethodName(s.method), " trains no LoRA"));
  }
  s.train_text_encoder = c.train_text_encoder();
  if (s.train_text_encoder && s.method != Method::kDreamBooth) {
    return absl::InvalidArgumentError(
        "train: train_text_encoder: only for dreambooth (LoRA uses lora_text_encoder_targets)");
  }
  s.ti_init_word = c.ti_init_word();
  s.ti_num_vectors = c.ti_num_vectors() == 0 ? kDefaultTiNumVectors : c.ti_num_vectors();
  LIKENESS_TRAIN_CHECK(Range("ti_num_vectors", s.ti_num_vectors, 1, kMaxTiVectors));
  if (s.trains_embedding() && s.ti_init_word.empty()) {
    return absl::InvalidArgumentError(
        "train: ti_init_word: textual inversion needs a word to start from (\"man\", \"dog\")");
  }
  s.pivotal_embedding_fraction = c.has_pivotal_embedding_fraction()
                                     ? c.pivotal_embedding_fraction()
                                     : kDefaultPivotalEmbeddingFraction;
  LIKENESS_TRAIN_CHECK(
      Range("pivotal_embedding_fraction", s.pivotal_embedding_fraction, 0.0, 1.0));
  s.pivotal_keep_training_embedding = c.pivotal_keep_training_embedding();
  s.save_peft_lora = c.save_peft_lora();

  // Run.
  s.checkpoint_every = c.checkpoint_every();
  LIKENESS_TRAIN_CHECK(Range("checkpoint_every", s.checkpoint_every, 0, kMaxSteps));
  s.validation_every = c.validation_every();
  LIKENESS_TRAIN_CHECK(Range("validation_every", s.validation_every, 0, kMaxSteps));
  for (const std::string& prompt : c.validation_prompts()) {
    s.validation_prompts.push_back(SubstituteIdentifier(prompt, s.identifier));
  }
  if (s.validation_every > 0 && s.validation_prompts.empty()) {
    return absl::InvalidArgumentError("train: validation_prompts: validation_every needs prompts");
  }
  s.max_consecutive_nan_skips = c.max_consecutive_nan_skips() == 0
                                    ? kDefaultMaxConsecutiveNanSkips
                                    : c.max_consecutive_nan_skips();
  LIKENESS_TRAIN_CHECK(
      Range("max_consecutive_nan_skips", s.max_consecutive_nan_skips, 1, kMaxSteps));
  s.resume = c.resume();
  s.checkpoints_to_keep = c.checkpoints_to_keep();
  LIKENESS_TRAIN_CHECK(Range("checkpoints_to_keep", s.checkpoints_to_keep, 0, kMaxSteps));
  return s;
}

}  // namespace likeness::train

#include "worker/train/settings_fingerprint.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/latent_cache.h"

namespace likeness::train {
namespace {

// Differences beyond this many are summarised, so the error stays one readable line.
constexpr int kMaxFieldsNamed = 8;

const char* PredictionName(Prediction p) {
  return p == Prediction::kVPrediction ? "v_prediction" : "epsilon";
}

}  // namespace

nlohmann::json ResultSettings(const TrainSettings& s, const std::string& model_key) {
  return {
      {"method", MethodName(s.method)},
      {"model_key", model_key},
      {"mixed_precision", s.mixed_precision == MixedPrecision::kBf16 ? "bf16" : "no"},
      {"instance_dir", s.instance_dir},
      {"instance_prompt", s.instance_prompt},
      {"identifier", s.identifier},
      {"caption_template", s.caption_template},
      {"class_dir", s.class_dir},
      {"class_prompt", s.class_prompt},
      {"num_class_images", s.num_class_images},
      {"prior_loss_weight", s.prior_loss_weight},
      {"resolution", s.resolution},
      {"bucketing", s.bucketing},
      {"random_flip", s.random_flip},
      {"seed", s.seed},
      {"steps", s.steps},
      {"batch_size", s.batch_size},
      {"gradient_accumulation_steps", s.gradient_accumulation_steps},
      {"learning_rate", s.learning_rate},
      {"text_encoder_learning_rate", s.text_encoder_learning_rate},
      {"embedding_learning_rate", s.embedding_learning_rate},
      {"lr_scheduler", LrScheduleName(s.lr_schedule.kind)},
      {"lr_warmup_steps", s.lr_schedule.warmup_steps},
      {"adam_beta1", s.adamw.beta1},
      {"adam_beta2", s.adamw.beta2},
      {"adam_epsilon", s.adamw.epsilon},
      {"adam_weight_decay", s.adamw.weight_decay},
      {"embedding_weight_decay", s.adamw.embedding_weight_decay},
      {"max_grad_norm", s.max_grad_norm},
      {"snr_gamma", s.snr_gamma},
      {"noise_offset", s.noise_offset},
      {"prediction_type", PredictionName(s.prediction)},
      {"ema_decay", s.ema_decay},
      {"gradient_checkpointing", s.gradient_checkpointing},
      {"lora_rank", s.lora.rank},
      {"lora_alpha", s.lora.alpha},
      {"lora_dropout", s.lora.dropout},
      {"lora_unet_targets", s.lora.unet_targets},
      {"lora_text_encoder_targets", s.lora.text_encoder_targets},
      {"train_text_encoder", s.train_text_encoder},
      {"ti_init_word", s.ti_init_word},
      {"ti_num_vectors", s.ti_num_vectors},
      {"pivotal_embedding_fraction", s.pivotal_embedding_fraction},
      {"pivotal_keep_training_embedding", s.pivotal_keep_training_embedding},
  };
}

std::string SettingsHash(const nlohmann::json& result_settings) {
  // nlohmann's object is key-sorted, so the dump is canonical.
  return Sha256Hex(result_settings.dump());
}

absl::Status CheckSameSettings(const nlohmann::json& recorded, const nlohmann::json& current,
                               const std::string& checkpoint_dir) {
  if (recorded.is_null() || recorded == current) return absl::OkStatus();
  std::vector<std::string> differences;
  for (const auto& [field, value] : current.items()) {
    const nlohmann::json before = recorded.contains(field) ? recorded[field] : nlohmann::json();
    if (before == value) continue;
    if (static_cast<int>(differences.size()) == kMaxFieldsNamed) {
      differences.push_back("...");
      break;
    }
    differences.push_back(
        absl::StrCat(field, " (checkpoint ", before.dump(), ", now ", value.dump(), ")"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "train: resume: ", checkpoint_dir, " was trained with other settings: ",
      absl::StrJoin(differences, "; "),
      ". Restore them, or train into another output_dir (only output and checkpoint settings "
      "may change across a resume)"));
}

}  // namespace likeness::train

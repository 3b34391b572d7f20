// Trainer's checkpoints (checkpoint.h's commit sequence), resume, the run loop and the
// library entry point.
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/dist/requeue.h"  // header only: the requeue payload's URL
#include "worker/model/state_dict.h"
#include "worker/train/checkpoint.h"
#include "worker/train/full_export.h"
#include "worker/train/settings_fingerprint.h"
#include "worker/train/trainer.h"
#include "worker/train/validation.h"

namespace likeness::train {
namespace fs = std::filesystem;
namespace {

constexpr char kParamPrefix[] = "param.";
constexpr char kGeneratorState[] = "rng.generator";
constexpr char kDefaultGeneratorState[] = "rng.default_cpu";
constexpr char kTokenizerFolder[] = "tokenizer";
// param_names_ prefixes of DreamBooth's groups (trainer.cc), whose tensors live in the
// component files rather than in trainer_state (full_export.h: the UNet is stored once).
constexpr char kUnetParamPrefix[] = "unet/";
constexpr char kTextEncoderParamPrefix[] = "text_encoders/text_encoder.";
constexpr char kTextEncoder2ParamPrefix[] = "text_encoders/text_encoder_2.";

// For a DreamBooth parameter name: the checkpoint file that holds it and its name there.
std::optional<std::pair<std::string, std::string>> ComponentFileOf(const std::string& param) {
  for (const auto& [prefix, file] :
       {std::pair<const char*, const char*>{kTextEncoder2ParamPrefix, kTextEncoder2FileName},
        {kTextEncoderParamPrefix, kTextEncoderFileName},
        {kUnetParamPrefix, kUnetFileName}}) {
    if (absl::StartsWith(param, prefix)) {
      return std::make_pair(std::string(file), param.substr(std::strlen(prefix)));
    }
  }
  return std::nullopt;
}

torch::Tensor GeneratorState(at::Generator generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void SetGeneratorState(at::Generator generator, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

safetensors::NamedTensors CpuCopies(const safetensors::NamedTensors& tensors) {
  safetensors::NamedTensors out;
  for (const auto& [name, t] : tensors) out.emplace_back(name, t.detach().cpu());
  return out;
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadTensors(const std::string& path) {
  LIKENESS_ASSIGN_OR_RETURN(auto file, safetensors::SafetensorsFile::Open(path));
  std::map<std::string, torch::Tensor> out;
  for (const std::string& name : file->Names()) {
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor t, file->Get(name));
    out[name] = t.clone();
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> Trainer::SaveCheckpoint() {
  const TrainSettings& s = settings_;
  LIKENESS_ASSIGN_OR_RETURN(CheckpointWriter writer, CheckpointWriter::Begin(s.output_dir, step_));
  const std::string dir = writer.dir();
  const auto path = [&](const std::string& name) { return (fs::path(dir) / name).string(); };
  try {
    // Weights users take elsewhere.
    if (lora_ != nullptr) {
      lora::LoraSaveOptions options;
      options.base_model_name = fs::path(s.base_model).stem().string();
      options.title = s.identifier;
      options.extra_metadata = {{"ss_steps", absl::StrCat(step_)},
                                {"ss_seed", absl::StrCat(s.seed)},
                                {"ss_learning_rate", absl::StrCat(s.learning_rate)}};
      LIKENESS_RETURN_IF_ERROR(lora_->Save(path(kLoraFileName), options));
      writer.AddFile(kLoraFileName);
      if (s.save_peft_lora) {
        options.format = lora::LoraFileFormat::kPeft;
        LIKENESS_RETURN_IF_ERROR(lora_->Save(path(kPeftLoraFileName), options));
        writer.AddFile(kPeftLoraFileName);
      }
    }
    if (ti_ != nullptr) {
      const std::string name = s.identifier + ".safetensors";
      LIKENESS_RETURN_IF_ERROR(ti_->Save(s.identifier, path(name)));
      writer.AddFile(name);
    }
    if (s.method == Method::kDreamBooth) {
      const auto write_module = [&](const char* name, const torch::nn::Module& module) {
        model::StateDict sd = model::ModuleStateDict(module);
        return safetensors::WriteSafetensors(
            path(name), CpuCopies(safetensors::NamedTensors(sd.begin(), sd.end())));
      };
      LIKENESS_RETURN_IF_ERROR(write_module(kUnetFileName, *models_.unet));
      writer.AddFile(kUnetFileName);
      if (s.train_text_encoder) {
        LIKENESS_RETURN_IF_ERROR(write_module(kTextEncoderFileName, *models_.text_encoder));
        LIKENESS_RETURN_IF_ERROR(write_module(kTextEncoder2FileName, *models_.text_encoder_2));
        writer.AddFile(kTextEncoderFileName);
        writer.AddFile(kTextEncoder2FileName);
      }
    }
    // Exact training state. The trainable tensors are stored here too, as held (float32), so
    // the restore is bit-exact whatever the export formats round.
    safetensors::NamedTensors state;
    const std::vector<torch::Tensor> params = optimizer_->AllParams();
    for (size_t i = 0; i < params.size(); ++i) {
      // DreamBooth's weights are already in unet.safetensors / text_encoder*.safetensors as
      // held (float32, bit-exact): not stored a second time.
      if (s.method == Method::kDreamBooth && ComponentFileOf(param_names_[i]).has_value()) continue;
      state.emplace_back(absl::StrCat(kParamPrefix, i), params[i]);
    }
    for (auto& item : optimizer_->StateTensors()) state.push_back(std::move(item));
    for (auto& item : ema_.StateTensors()) state.push_back(std::move(item));
    state.emplace_back(kGeneratorState, GeneratorState(generator_));
    state.emplace_back(kDefaultGeneratorState,
                       GeneratorState(at::detail::getDefaultCPUGenerator()));
    LIKENESS_RETURN_IF_ERROR(
        safetensors::WriteSafetensors(path(kStateTensorsName), CpuCopies(state)));
    writer.AddFile(kStateTensorsName);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("train: checkpoint ", dir, ": ", e.what_without_backtrace()));
  }
  nlohmann::json json = {
      {"step", step_},
      {"method", MethodName(s.method)},
      {"data_batches_consumed", data_position_},
      {"lr_schedule",
       {{"kind", LrScheduleName(s.lr_schedule.kind)},
        {"warmup_steps", s.lr_schedule.warmup_steps},
        {"total_steps", s.lr_schedule.total_steps},
        {"next_step", step_}}},
      {"skipped_steps", skipped_},
      {"consecutive_skips", consecutive_skips_},
      {"has_smoothed_loss", has_smoothed_loss_},
      {"smoothed_loss", smoothed_loss_},  // written with 17 digits: exact round trip
      {"param_names", param_names_},
      {"settings", ResultSettings(s, model_key_)},
      {"settings_hash", SettingsHash(ResultSettings(s, model_key_))},
      {"frozen_groups", [&] {
         std::vector<std::string> frozen;
         for (const ParamGroup& g : optimizer_->groups()) {
           if (g.frozen) frozen.push_back(g.name);
         }
         return frozen;
       }()},
  };
  LIKENESS_RETURN_IF_ERROR(WriteFileAtomically(path(kStateJsonName), json.dump(2) + "\n"));
  writer.AddFile(kStateJsonName);
  LIKENESS_ASSIGN_OR_RETURN(std::string final_dir,
                            writer.Commit({{"method", MethodName(s.method)}}));
  LIKENESS_RETURN_IF_ERROR(PruneCheckpoints(s.output_dir, s.checkpoints_to_keep));
  Report(absl::StrCat("checkpoint ", final_dir), std::numeric_limits<double>::quiet_NaN(), 0.0, 0.0);
  return final_dir;
}

absl::Status Trainer::Resume(const std::string& checkpoint_dir) {
  LIKENESS_ASSIGN_OR_RETURN(CheckpointInfo info, ReadCheckpoint(checkpoint_dir));
  LIKENESS_ASSIGN_OR_RETURN(std::string text,
                            ReadFileToString((fs::path(checkpoint_dir) / kStateJsonName).string()));
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_object() || json.value("method", "") != MethodName(settings_.method)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "train: resume: ", checkpoint_dir, " is not a ", MethodName(settings_.method),
        " checkpoint"));
  }
  LIKENESS_RETURN_IF_ERROR(CheckSameSettings(json.contains("settings") ? json["settings"]
                                                                        : nlohmann::json(),
                                             ResultSettings(settings_, model_key_),
                                             checkpoint_dir));
  if (json.value("param_names", std::vector<std::string>{}) != param_names_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "train: resume: ", checkpoint_dir,
        " trained other tensors (targets, rank or method differ from these settings)"));
  }
  LIKENESS_ASSIGN_OR_RETURN(
      auto tensors, ReadTensors((fs::path(checkpoint_dir) / kStateTensorsName).string()));
  const std::vector<torch::Tensor> params = optimizer_->AllParams();
  // DreamBooth's weights come from the component files (SaveCheckpoint stores them once).
  std::map<std::string, std::map<std::string, torch::Tensor>> component_files;
  for (size_t i = 0; i < params.size(); ++i) {
    if (settings_.method != Method::kDreamBooth) break;
    if (tensors.count(absl::StrCat(kParamPrefix, i)) > 0) continue;
    const auto where = ComponentFileOf(param_names_[i]);
    if (!where.has_value()) continue;
    if (component_files.count(where->first) == 0) {
      LIKENESS_ASSIGN_OR_RETURN(component_files[where->first],
                                ReadTensors((fs::path(checkpoint_dir) / where->first).string()));
    }
    const auto& file = component_files[where->first];
    const auto it = file.find(where->second);
    if (it != file.end()) tensors[absl::StrCat(kParamPrefix, i)] = it->second;
  }
  try {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto it = tensors.find(absl::StrCat(kParamPrefix, i));
      if (it == tensors.end() || it->second.sizes() != params[i].sizes()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "train: resume: ", checkpoint_dir, ": ", param_names_[i], " missing or reshaped"));
      }
      params[i].copy_(it->second);
    }
    LIKENESS_RETURN_IF_ERROR(optimizer_->LoadStateTensors(tensors));
    LIKENESS_RETURN_IF_ERROR(ema_.LoadStateTensors(tensors));
    for (const char* name : {kGeneratorState, kDefaultGeneratorState}) {
      if (tensors.count(name) == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("train: resume: ", checkpoint_dir, ": no ", name));
      }
    }
    SetGeneratorState(generator_, tensors.at(kGeneratorState));
    SetGeneratorState(at::detail::getDefaultCPUGenerator(), tensors.at(kDefaultGeneratorState));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("train: resume from ", checkpoint_dir, ": ", e.what_without_backtrace()));
  }
  step_ = info.step;
  skipped_ = json.value("skipped_steps", int64_t{0});
  consecutive_skips_ = json.value("consecutive_skips", int64_t{0});
  has_smoothed_loss_ = json.value("has_smoothed_loss", false);
  smoothed_loss_ = json.value("smoothed_loss", 0.0);
  // All ranks together: equal to step * gradient_accumulation_steps * ranks when the rank
  // count never changed; stored, so that a resume on another rank count continues the data.
  data_position_ =
      json.value("data_batches_consumed", step_ * settings_.gradient_accumulation_steps);
  losses_.clear();
  metrics_.reset();  // reopened at the next step, dropping lines past step_
  ApplyPhase();
  // Every rank read the same checkpoint; the broadcast and the step check make sure.
  LIKENESS_RETURN_IF_ERROR(reducer_->SyncParameters(optimizer_->AllParams(), step_));
  Report(absl::StrCat("resumed ", checkpoint_dir), std::numeric_limits<double>::quiet_NaN(), 0.0, 0.0);
  return absl::OkStatus();
}

absl::Status Trainer::Validate() {
  LIKENESS_ASSIGN_OR_RETURN(
      std::vector<std::string> images,
      WriteValidationImages(settings_, step_, models_, tokenizer_, ti_.get()));
  Report(absl::StrCat("validation ", images.empty() ? "" : fs::path(images[0]).parent_path().string()),
         std::numeric_limits<double>::quiet_NaN(), 0.0, 0.0);
  return absl::OkStatus();
}

absl::Status Trainer::Run() {
  const int validate_every = settings_.validation_every;
  // Data parallelism: rank 0 alone writes files, between steps (no collective in flight);
  // the other ranks wait for its verdict, so a failed checkpoint stops every rank.
  const auto on_rank_zero = [&](const std::function<absl::Status()>& work) {
    return reducer_->ShareRankZeroStatus(reducer_->rank() == 0 ? work() : absl::OkStatus());
  };
  const auto checkpoint = [&] { return SaveCheckpoint().status(); };
  while (step_ < settings_.steps) {
    LIKENESS_RETURN_IF_ERROR(Step());
    if (validate_every > 0 && (step_ % validate_every == 0 || step_ == settings_.steps)) {
      LIKENESS_RETURN_IF_ERROR(on_rank_zero([&] { return Validate(); }));
    }
    const bool periodic = settings_.checkpoint_every > 0 &&
                          step_ % settings_.checkpoint_every == 0 && step_ < settings_.steps;
    if (periodic) LIKENESS_RETURN_IF_ERROR(on_rank_zero(checkpoint));
    if (hooks_.stop_requested && step_ < settings_.steps) {
      // Preemption reaches the ranks at slightly different moments: stop when any rank saw it.
      LIKENESS_ASSIGN_OR_RETURN(const bool stop, reducer_->AnyRank(hooks_.stop_requested()));
      if (stop) {
        if (!periodic) LIKENESS_RETURN_IF_ERROR(on_rank_zero(checkpoint));
        absl::Status preempted = absl::AbortedError(absl::StrCat(
            "train: preempted at step ", step_, "; checkpointed, requeue to resume"));
        preempted.SetPayload(dist::kRequeuePayloadUrl, absl::Cord("1"));
        return preempted;
      }
    }
  }
  return on_rank_zero([&]() -> absl::Status {
    LIKENESS_ASSIGN_OR_RETURN(const std::string final_dir, SaveCheckpoint());
    if (settings_.method != Method::kDreamBooth) return absl::OkStatus();
    return ExportFullModel(final_dir).status();
  });
}

absl::StatusOr<std::string> Trainer::ExportFullModel(const std::string& checkpoint_dir) {
  FullExportInput input;
  input.base_model = settings_.base_model;
  LIKENESS_ASSIGN_OR_RETURN(input.configs,
                            BaseModelConfigs(settings_.base_model, settings_.model_config));
  for (const char* name : model::kSdxlComponents) {
    input.weights[name] = model::ModuleStateDict(*models_.Component(name));
  }
  if (ema_.enabled()) {
    // The EMA shadow replaces each trained tensor (what diffusers' --use_ema saves).
    const std::vector<torch::Tensor>& shadow = ema_.shadow();
    for (size_t i = 0; i < param_names_.size() && i < shadow.size(); ++i) {
      const auto where = ComponentFileOf(param_names_[i]);
      if (!where.has_value()) continue;
      const std::string component = fs::path(where->first).stem().string();
      input.weights[component][where->second] = shadow[i];
    }
  } else {
    // unet.safetensors (and the text encoders' files) hold exactly these bytes: link them.
    input.link_from["unet"] = (fs::path(checkpoint_dir) / kUnetFileName).string();
    if (settings_.train_text_encoder) {
      input.link_from["text_encoder"] = (fs::path(checkpoint_dir) / kTextEncoderFileName).string();
      input.link_from["text_encoder_2"] =
          (fs::path(checkpoint_dir) / kTextEncoder2FileName).string();
    }
  }
  LIKENESS_ASSIGN_OR_RETURN(std::string dir, WriteFullExport(settings_.output_dir, input));
  Report(absl::StrCat("export ", dir), std::numeric_limits<double>::quiet_NaN(), 0.0, 0.0);
  return dir;
}

absl::StatusOr<TrainResult> RunTraining(const TrainSettings& settings, const TrainHooks& hooks) {
  model::SdxlBuildOptions build;
  try {
    build.device = torch::Device(settings.device);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("train: device: ", settings.device, ": ", e.what_without_backtrace()));
  }
  // bf16: frozen weights are stored in bf16 (LoRA and textual inversion train float32
  // tensors beside them); a full fine-tune keeps float32 master weights and gets bf16 from
  // autocast on CUDA (trainer.cc).
  build.dtype = settings.mixed_precision == MixedPrecision::kBf16 &&
                        settings.method != Method::kDreamBooth
                    ? torch::kBFloat16
                    : torch::kFloat32;
  nlohmann::json config_override = nullptr;
  if (!settings.model_config.empty()) {
    config_override = nlohmann::json::parse(settings.model_config, nullptr, false);
    if (config_override.is_discarded()) {
      return absl::InvalidArgumentError("train: model_config: not valid JSON");
    }
    if (config_override.contains("config")) config_override = config_override["config"];
  }
  model::SdxlLoadReport report;
  LIKENESS_ASSIGN_OR_RETURN(model::SdxlModels models,
                            model::LoadSdxlModels(settings.base_model, build, &report,
                                                  config_override));
  std::string vocab = settings.vocab;
  std::error_code error;
  const std::string tokenizer_dir = (fs::path(settings.base_model) / kTokenizerFolder).string();
  if (vocab.empty() && fs::is_directory(tokenizer_dir, error)) vocab = tokenizer_dir;
  if (vocab.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train: vocab: ", settings.base_model, " has no tokenizer/ folder; give the CLIP vocabulary"));
  }
  LIKENESS_ASSIGN_OR_RETURN(text::ClipTokenizer tokenizer, text::ClipTokenizer::Load(vocab));
  LIKENESS_ASSIGN_OR_RETURN(std::string model_key,
                            ModelKey(settings.base_model, settings.model_config));
  LIKENESS_ASSIGN_OR_RETURN(
      std::unique_ptr<Trainer> trainer,
      Trainer::Create(settings, std::move(models),
                      std::make_shared<const text::ClipTokenizer>(std::move(tokenizer)), model_key,
                      hooks));
  if (settings.resume) {
    LIKENESS_ASSIGN_OR_RETURN(std::optional<CheckpointInfo> latest,
                              FindLatestCheckpoint(settings.output_dir));
    if (latest.has_value()) LIKENESS_RETURN_IF_ERROR(trainer->Resume(latest->dir));
  }
  LIKENESS_RETURN_IF_ERROR(trainer->Run());
  TrainResult result;
  result.steps = trainer->step();
  result.skipped_steps = trainer->skipped_steps();
  result.final_smoothed_loss = trainer->smoothed_loss();
  result.final_checkpoint = (fs::path(settings.output_dir) / CheckpointDirName(trainer->step())).string();
  return result;
}

}  // namespace likeness::train

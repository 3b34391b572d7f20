#include "worker/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <filesystem>
#include <cmath>
#include <limits>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/torch_compat.h"
#include "worker/data/subject_dataset.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/sdxl_conditioning.h"
#include "worker/train/class_images.h"

namespace likeness::train {
namespace {

constexpr char kUnetGroup[] = "unet";
constexpr char kTextEncoderGroup[] = "text_encoders";
constexpr char kEmbeddingGroup[] = "embeddings";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void SetRequiresGrad(torch::nn::Module& module, bool requires_grad) {
  for (torch::Tensor& p : module.parameters()) p.requires_grad_(requires_grad);
}

torch::Tensor IdsTensor(const std::vector<int>& ids) {
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return torch::tensor(wide, torch::kInt64);
}

}  // namespace

Trainer::Trainer(const TrainSettings& settings, model::SdxlModels models,
                 std::shared_ptr<const text::ClipTokenizer> tokenizer, TrainHooks hooks)
    : settings_(settings),
      hooks_(std::move(hooks)),
      device_(torch::Device(settings.device)),
      // The frozen weights' dtype (RunTraining): a full fine-tune's bf16 is autocast only.
      dtype_(settings.mixed_precision == MixedPrecision::kBf16 &&
                     settings.method != Method::kDreamBooth
                 ? torch::kBFloat16
                 : torch::kFloat32),
      models_(std::move(models)),
      tokenizer_(std::move(tokenizer)),
      schedule_([&] {
        sample::NoiseScheduleConfig config;
        config.prediction_type = settings.prediction == Prediction::kVPrediction
                                     ? sample::PredictionType::kVPrediction
                                     : sample::PredictionType::kEpsilon;
        return config;
      }()),
      generator_(at::detail::createCPUGenerator(settings.seed)) {
  reducer_ = hooks_.reducer != nullptr ? hooks_.reducer : &single_process_;
}

Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(
    const TrainSettings& settings, model::SdxlModels models,
    std::shared_ptr<const text::ClipTokenizer> tokenizer, std::string model_key,
    TrainHooks hooks) {
  if (!models.unet || !models.vae || !models.text_encoder || !models.text_encoder_2) {
    return absl::FailedPreconditionError("train: the model bundle lacks a component");
  }
  if (tokenizer == nullptr) return absl::FailedPreconditionError("train: no tokenizer");
  std::unique_ptr<Trainer> trainer;
  try {
    trainer.reset(new Trainer(settings, std::move(models), std::move(tokenizer), std::move(hooks)));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("train: device: ", settings.device, ": ", e.what_without_backtrace()));
  }
  // LoRA dropout draws from libtorch's default CPU generator: seed it so runs repeat.
  {
    at::Generator default_generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(default_generator.mutex());
    default_generator.set_current_seed(settings.seed);
  }
  trainer->model_key_ = model_key;
  // Before any adapter is attached: class images come from the untouched base model.
  LIKENESS_RETURN_IF_ERROR(trainer->PrepareClassImages(model_key));
  LIKENESS_RETURN_IF_ERROR(trainer->SetUpTrainables());
  LIKENESS_RETURN_IF_ERROR(trainer->SetUpData(model_key));
  // Data parallelism: every rank starts from rank 0's trainable tensors.
  LIKENESS_RETURN_IF_ERROR(
      trainer->reducer_->SyncParameters(trainer->optimizer_->AllParams(), trainer->step_));
  return trainer;
}

absl::Status Trainer::SetUpTrainables() {
  const TrainSettings& s = settings_;
  for (const char* name : model::kSdxlComponents) SetRequiresGrad(*models_.Component(name), false);
  std::vector<ParamGroup> groups;
  const auto add_group = [&](const char* group, std::vector<std::pair<std::string, torch::Tensor>> named,
                             double lr, double weight_decay) {
    if (named.empty()) return;
    ParamGroup g;
    g.name = group;
    g.base_lr = lr;
    g.weight_decay = weight_decay;
    for (auto& [name, tensor] : named) {
      param_names_.push_back(absl::StrCat(group, "/", name));
      g.params.push_back(tensor);
    }
    groups.push_back(std::move(g));
  };
  try {
    if (s.method == Method::kDreamBooth) {
      std::vector<std::pair<std::string, torch::Tensor>> unet;
      for (const auto& item : models_.unet->named_parameters()) {
        item.value().requires_grad_(true);
        unet.emplace_back(item.key(), item.value());
      }
      add_group(kUnetGroup, std::move(unet), s.learning_rate, s.adamw.weight_decay);
      if (s.train_text_encoder) {
        std::vector<std::pair<std::string, torch::Tensor>> text;
        for (const auto& item : models_.text_encoder->named_parameters()) {
          item.value().requires_grad_(true);
          text.emplace_back(absl::StrCat("text_encoder.", item.key()), item.value());
        }
        for (const auto& item : models_.text_encoder_2->named_parameters()) {
          item.value().requires_grad_(true);
          text.emplace_back(absl::StrCat("text_encoder_2.", item.key()), item.value());
        }
        add_group(kTextEncoderGroup, std::move(text), s.text_encoder_learning_rate,
                  s.adamw.weight_decay);
      }
    }
    if (s.trains_embedding()) {
      LIKENESS_ASSIGN_OR_RETURN(ti_, embeddings::SdxlTextualInversion::Attach(models_, tokenizer_,
                                                                              tokenizer_));
      LIKENESS_RETURN_IF_ERROR(ti_->AddTokenFromWord(s.identifier, s.ti_num_vectors,
                                                     s.ti_init_word, /*trainable=*/true));
      std::vector<std::pair<std::string, torch::Tensor>> named;
      const std::vector<torch::Tensor> tensors = ti_->TrainableTensors();
      const std::vector<std::string> names = ti_->TrainableTensorNames();
      for (size_t i = 0; i < tensors.size(); ++i) named.emplace_back(names[i], tensors[i]);
      add_group(kEmbeddingGroup, std::move(named), s.embedding_learning_rate,
                s.adamw.embedding_weight_decay);
    }
    if (s.trains_lora()) {
      lora::LoraTrainOptions options;
      options.rank = s.lora.rank;
      options.alpha = s.lora.alpha;
      options.dropout = s.lora.dropout;
      options.seed = s.seed;
      if (!s.lora.unet_targets.empty()) options.targets.unet = s.lora.unet_targets;
      options.targets.text_encoder = s.lora.text_encoder_targets;
      options.targets.text_encoder_2 = s.lora.text_encoder_targets;
      options.freeze_base = true;
      LIKENESS_ASSIGN_OR_RETURN(lora_, lora::LoraNetwork::CreateTrainable(models_, options));
      std::vector<std::pair<std::string, torch::Tensor>> unet, text;
      for (auto& [name, tensor] : lora_->NamedTrainableTensors()) {
        (absl::StartsWith(name, "unet.") ? unet : text).emplace_back(name, tensor);
      }
      add_group(kUnetGroup, std::move(unet), s.learning_rate, s.adamw.weight_decay);
      add_group(kTextEncoderGroup, std::move(text), s.text_encoder_learning_rate,
                s.adamw.weight_decay);
    }
    text_trains_ = s.trains_embedding() || !s.lora.text_encoder_targets.empty() ||
                   s.train_text_encoder;
    models_.unet->train();
    models_.vae->eval();
    if (text_trains_) {
      models_.text_encoder->train();
      models_.text_encoder_2->train();
    } else {
      models_.text_encoder->eval();
      models_.text_encoder_2->eval();
    }
    models_.unet->SetGradientCheckpointing(s.gradient_checkpointing);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("train: setting up ", MethodName(s.method), ": ",
                                            e.what_without_backtrace()));
  }
  if (groups.empty()) return absl::InvalidArgumentError("train: nothing to train");
  AdamWOptions options{s.adamw.beta1, s.adamw.beta2, s.adamw.epsilon};
  optimizer_ = std::make_unique<AdamW>(std::move(groups), options);
  ema_ = Ema(optimizer_->AllParams(), s.ema_decay);
  return absl::OkStatus();
}

absl::Status Trainer::SetUpData(const std::string& model_key) {
  const TrainSettings& s = settings_;
  const int64_t downsamplings = models_.unet->config().num_levels() - 1;
  const int multiple = static_cast<int>(models_.vae->config().DownsampleFactor() << downsamplings);
  if (s.resolution % multiple != 0) {
    return absl::InvalidArgumentError(absl::StrCat("train: resolution: ", s.resolution,
                                                   " is not a multiple of ", multiple,
                                                   " (the VAE factor times the UNet's downsamplings)"));
  }
  buckets_ = MakeBuckets(s.resolution, multiple, s.bucketing);
  LIKENESS_ASSIGN_OR_RETURN(instance_, ListTrainImages(s.instance_dir, s.caption_template,
                                                       s.instance_prompt, buckets_));
  if (s.prior_preservation()) {
    if (num_given_class_images_ > 0) {
      LIKENESS_ASSIGN_OR_RETURN(class_, ListTrainImages(s.class_dir, "", s.class_prompt, buckets_));
    }
    if (!generated_class_dir_.empty()) {
      LIKENESS_ASSIGN_OR_RETURN(std::vector<TrainImage> generated,
                                ListTrainImages(generated_class_dir_, "", s.class_prompt, buckets_));
      class_.insert(class_.end(), generated.begin(), generated.end());
    }
    if (class_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "train: class_dir: ", s.class_dir, " holds no image; set num_class_images to have "
          "them generated"));
    }
    if (s.num_class_images > 0) class_.resize(std::min<size_t>(class_.size(), s.num_class_images));
    for (TrainImage& image : class_) image.caption = s.class_prompt;
  }
  std::vector<int> example_buckets;
  for (const TrainImage& image : instance_) example_buckets.push_back(image.bucket);
  order_ = std::make_unique<DataOrder>(std::move(example_buckets),
                                       static_cast<int>(buckets_.size()), s.batch_size, s.seed,
                                       s.random_flip);
  cache_ = std::make_unique<LatentCache>(s.cache_dir, model_key);
  // Fill the cache up front: every instance image in its bucket, both flips when flipping.
  Report("caching", kNaN, 0.0, 0.0);
  for (const TrainImage& image : instance_) {
    for (const bool flip : {false, true}) {
      if (flip && !s.random_flip) continue;
      LIKENESS_RETURN_IF_ERROR(
          cache_->Latent(image.path, buckets_[image.bucket], flip, models_.vae).status());
    }
  }
  return absl::OkStatus();
}

absl::Status Trainer::PrepareClassImages(const std::string& model_key) {
  const TrainSettings& s = settings_;
  if (!s.prior_preservation()) return absl::OkStatus();
  std::error_code error;
  // A missing or empty class_dir is zero given images (all are generated), not an error.
  if (std::filesystem::is_directory(s.class_dir, error) &&
      !std::filesystem::is_empty(s.class_dir, error)) {
    LIKENESS_ASSIGN_OR_RETURN(const std::vector<std::string> files,
                              data::ListSubjectImages(s.class_dir));
    num_given_class_images_ = static_cast<int>(files.size());
  }
  const int missing = s.num_class_images - num_given_class_images_;
  if (missing <= 0) return absl::OkStatus();
  ClassImageRequest request;
  request.cache_dir = s.cache_dir;
  request.model_key = model_key;
  request.class_prompt = s.class_prompt;
  request.count = missing;
  request.resolution = s.resolution;
  request.seed = s.seed;
  Report("generating class images", kNaN, 0.0, 0.0);
  LIKENESS_ASSIGN_OR_RETURN(generated_class_dir_,
                            EnsureClassImages(request, models_, tokenizer_));
  return absl::OkStatus();
}

void Trainer::ApplyPhase() {
  if (settings_.method != Method::kPivotalTuning || step_ < settings_.EmbeddingStopStep()) return;
  for (ParamGroup& group : optimizer_->groups()) {
    if (group.name != kEmbeddingGroup || group.frozen) continue;
    group.frozen = true;
    (void)ti_->SetTrainable(settings_.identifier, false);
  }
}

absl::StatusOr<model::SdxlPromptEmbeds> Trainer::Conditioning(
    const std::vector<std::string>& captions) {
  std::vector<torch::Tensor> ids_1, ids_2;
  if (ti_ != nullptr) {
    const embeddings::SdxlPromptIds ids = ti_->Tokenize(captions);
    ids_1 = {ids.ids_1};
    ids_2 = {ids.ids_2};
  } else {
    for (const std::string& caption : captions) {
      ids_1.push_back(IdsTensor(tokenizer_->Tokenize(caption, embeddings::kPadStyle1)).unsqueeze(0));
      ids_2.push_back(IdsTensor(tokenizer_->Tokenize(caption, embeddings::kPadStyle2)).unsqueeze(0));
    }
  }
  if (text_trains_) {
    return model::EncodeSdxlPrompt(models_.text_encoder, models_.text_encoder_2,
                                   torch::cat(ids_1), torch::cat(ids_2));
  }
  std::vector<torch::Tensor> embeds, pooled;
  for (size_t i = 0; i < captions.size(); ++i) {
    LIKENESS_ASSIGN_OR_RETURN(model::SdxlPromptEmbeds e,
                              cache_->Text(ids_1[i].squeeze(0), ids_2[i].squeeze(0), models_));
    embeds.push_back(e.prompt_embeds);
    pooled.push_back(e.pooled_prompt_embeds);
  }
  return model::SdxlPromptEmbeds{torch::stack(embeds), torch::stack(pooled)};
}

absl::StatusOr<DiffusionLoss> Trainer::MicroBatchLoss(int64_t batch_index) {
  const TrainSettings& s = settings_;
  const BatchRef batch = order_->Batch(batch_index);
  const Bucket& bucket = buckets_[batch.bucket];
  std::vector<torch::Tensor> latents, time_ids;
  std::vector<std::string> captions;
  for (size_t i = 0; i < batch.examples.size(); ++i) {
    const TrainImage& image = instance_[batch.examples[i]];
    LIKENESS_ASSIGN_OR_RETURN(CachedLatent c,
                              cache_->Latent(image.path, bucket, batch.flips[i], models_.vae));
    latents.push_back(c.latents);
    time_ids.push_back(c.time_ids);
    captions.push_back(image.caption);
  }
  const int64_t num_instance = static_cast<int64_t>(latents.size());
  if (!class_.empty()) {
    for (int64_t j = 0; j < num_instance; ++j) {
      const int64_t k = batch_index * s.batch_size + j;
      const TrainImage& image =
          class_[ClassExample(k, static_cast<int>(class_.size()), s.seed)];
      LIKENESS_ASSIGN_OR_RETURN(CachedLatent c,
                                cache_->Latent(image.path, bucket, false, models_.vae));
      latents.push_back(c.latents);
      time_ids.push_back(c.time_ids);
      captions.push_back(image.caption);
    }
  }
  const torch::Tensor x0 = torch::stack(latents);  // [B, C, h, w] float32, CPU
  const auto [noise, timesteps] = DrawNoise(x0.sizes());
  const torch::Tensor noisy = schedule_.AddNoise(x0, noise, timesteps);
  const torch::Tensor target = schedule_.Target(x0, noise, timesteps);
  const torch::Tensor weights = s.snr_gamma > 0.0
                                    ? MinSnrWeights(schedule_.Snr(timesteps), s.snr_gamma, s.prediction)
                                    : torch::Tensor();
  // bf16 autocast on CUDA (diffusers' --mixed_precision bf16): float32 master weights, bf16
  // matmuls and convolutions; the loss below is computed in float32 either way.
  std::optional<compat::CudaAutocast> autocast;
  if (device_.is_cuda() && s.mixed_precision == MixedPrecision::kBf16) {
    autocast.emplace(torch::kBFloat16);
  }
  LIKENESS_ASSIGN_OR_RETURN(model::SdxlPromptEmbeds cond, Conditioning(captions));
  const auto unet_options = torch::TensorOptions().device(device_).dtype(dtype_);
  const torch::Tensor prediction = models_.unet->forward(
      noisy.to(unet_options), timesteps.to(device_), cond.prompt_embeds.to(unet_options),
      cond.pooled_prompt_embeds.to(unet_options), torch::stack(time_ids).to(unet_options));
  return ComputeDiffusionLoss(prediction, target.to(device_), weights, num_instance,
                              s.prior_loss_weight);
}

std::pair<torch::Tensor, torch::Tensor> Trainer::DrawNoise(at::IntArrayRef shape) {
  const TrainSettings& s = settings_;
  const int64_t rows = shape[0];
  // Drawn on the CPU in a fixed order, so a seed means the same noise on every device.
  torch::Tensor noise = torch::randn(shape, generator_, torch::kFloat32);
  if (s.noise_offset > 0.0) {
    // Offset noise (Guttenberg 2023): a per-channel constant lets the model shift mean brightness.
    noise = noise + s.noise_offset * torch::randn({rows, shape[1], 1, 1}, generator_,
                                                  torch::kFloat32);
  }
  const torch::Tensor timesteps = torch::randint(0, schedule_.config().num_train_timesteps,
                                                 {rows}, generator_, torch::kInt64);
  return {noise, timesteps};
}

absl::Status Trainer::SkipMicroBatch(int64_t batch_index) {
  // Another rank's micro-batch: draw what MicroBatchLoss would, so that generator_ stays where
  // one process running every micro-batch would have it (same noise, same bits).
  const BatchRef& batch = order_->Batch(batch_index);
  const TrainImage& first = instance_[batch.examples[0]];
  LIKENESS_ASSIGN_OR_RETURN(CachedLatent c, cache_->Latent(first.path, buckets_[batch.bucket],
                                                           batch.flips[0], models_.vae));
  const int64_t rows = static_cast<int64_t>(batch.examples.size()) * (class_.empty() ? 1 : 2);
  std::vector<int64_t> shape = {rows};  // [B, C, h, w]
  for (const int64_t d : c.latents.sizes()) shape.push_back(d);
  (void)DrawNoise(shape);
  return absl::OkStatus();
}

absl::Status Trainer::Step() {
  const TrainSettings& s = settings_;
  const auto start = std::chrono::steady_clock::now();
  ApplyPhase();
  optimizer_->ZeroGrad();
  double loss_value = 0.0;
  int64_t images = 0;
  // Data parallelism: a step consumes world * A batches (A = gradient_accumulation_steps);
  // rank r runs batches r*A .. r*A+A-1 of them and only draws the others' noise.
  const int world = reducer_->world_size();
  const int accumulation = s.gradient_accumulation_steps;
  try {
    for (int j = 0; j < world * accumulation; ++j) {
      const int64_t batch_index = data_position_ + j;
      if (j / accumulation != reducer_->rank()) {
        LIKENESS_RETURN_IF_ERROR(SkipMicroBatch(batch_index));
        continue;
      }
      const int micro = j % accumulation;
      reducer_->PrepareBackward(micro == accumulation - 1);
      LIKENESS_ASSIGN_OR_RETURN(DiffusionLoss loss, MicroBatchLoss(batch_index));
      torch::Tensor total = loss.total;
      if (micro == 0 && hooks_.nan_loss_steps.count(step_) > 0) total = total * kNaN;
      (total / s.gradient_accumulation_steps).backward();
      loss_value += total.item<double>() / s.gradient_accumulation_steps;
      images += order_->Batch(batch_index).examples.size() * (class_.empty() ? 1 : 2);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("train: step ", step_, ": ", e.what_without_backtrace()));
  }
  data_position_ += world * accumulation;
  images *= world;  // every rank ran as many images (up to a bucket's last, smaller batch)
  LIKENESS_ASSIGN_OR_RETURN(loss_value, reducer_->AverageScalar(loss_value));
  std::vector<torch::Tensor> params = optimizer_->AllParams();
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (const torch::Tensor& p : params) grads.push_back(p.grad());
  LIKENESS_RETURN_IF_ERROR(reducer_->ReduceGradients(grads));
  const double grad_norm = ClipGradNorm(grads, s.max_grad_norm);
  LIKENESS_ASSIGN_OR_RETURN(
      const bool non_finite,
      reducer_->AnyNonFinite(!std::isfinite(loss_value) || !std::isfinite(grad_norm)));
  const double lr_factor = LrFactor(s.lr_schedule, step_);
  const double lr = optimizer_->groups().front().base_lr * lr_factor;
  if (non_finite) {
    optimizer_->ZeroGrad();
    ++skipped_;
    ++consecutive_skips_;
  } else {
    consecutive_skips_ = 0;
    optimizer_->Step(lr_factor);
    optimizer_->ZeroGrad();
    ema_.Update(params);
    smoothed_loss_ = has_smoothed_loss_
                         ? kLossSmoothing * smoothed_loss_ + (1.0 - kLossSmoothing) * loss_value
                         : loss_value;
    has_smoothed_loss_ = true;
  }
  losses_[step_] = non_finite ? kNaN : loss_value;
  ++step_;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  StepMetrics m;
  m.step = step_;
  m.loss = non_finite ? kNaN : loss_value;
  m.smoothed_loss = has_smoothed_loss_ ? smoothed_loss_ : kNaN;
  m.lr = lr;
  m.grad_norm = grad_norm;
  m.images_per_second = seconds > 0 ? images / seconds : 0.0;
  m.peak_memory_bytes = PeakHostMemoryBytes();
  if (device_.is_cuda()) {
    const compat::CudaMemoryStats cuda =
        compat::GetCudaMemoryStats(device_.index() < 0 ? 0 : device_.index());
    if (cuda.has_cuda_allocator) m.cuda_peak_memory_bytes = cuda.peak_allocated_bytes;
  }
  m.skipped_steps = skipped_;
  m.skipped = non_finite;
  // Rank 0 alone writes metrics (every rank holds the same averaged figures), after the
  // step's last collective.
  if (!metrics_.has_value() && reducer_->rank() == 0) {
    // Opened at the first step, so a resume has set step_ first: lines past the checkpoint go.
    std::error_code error;
    std::filesystem::create_directories(s.output_dir, error);
    LIKENESS_ASSIGN_OR_RETURN(
        MetricsWriter writer,
        MetricsWriter::Open(absl::StrCat(s.output_dir, "/", kMetricsFileName), step_ - 1));
    metrics_.emplace(std::move(writer));
  }
  if (metrics_.has_value()) LIKENESS_RETURN_IF_ERROR(metrics_->Write(m));
  Report("step", m.loss, lr, m.images_per_second);
  if (consecutive_skips_ >= s.max_consecutive_nan_skips) {
    return absl::FailedPreconditionError(absl::StrCat(
        "train: ", consecutive_skips_, " consecutive steps (up to step ", step_,
        ") had a non-finite loss or gradient, the limit max_consecutive_nan_skips; the run has "
        "diverged: lower the learning rate, keep max_grad_norm on, or check the images"));
  }
  return absl::OkStatus();
}

void Trainer::Report(const std::string& event, double loss, double lr, double images_per_second) {
  if (!hooks_.progress || reducer_->rank() != 0) return;  // one progress stream per job
  TrainProgress p;
  p.step = step_;
  p.total_steps = settings_.steps;
  p.loss = loss;
  p.smoothed_loss = has_smoothed_loss_ ? smoothed_loss_ : kNaN;
  p.lr = lr;
  p.images_per_second = images_per_second;
  p.skipped_steps = skipped_;
  p.event = event;
  hooks_.progress(p);
}

}  // namespace likeness::train

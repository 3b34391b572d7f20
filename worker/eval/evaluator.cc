#include "worker/eval/evaluator.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/eval/metrics.h"
#include "worker/eval/pillow_resize.h"
#include "worker/eval/prompts.h"
#include "worker/image/image_io.h"

namespace likeness::eval {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kPromptSourceFile[] = "prompts file";
constexpr char kPromptSourcePng[] = "png parameters";
constexpr double kMaxSample = 255.0;

// Collects preprocessed images and runs the encoder on each full batch, so only one batch of
// pixels is held at a time.
class BatchedEncoder {
 public:
  using Run = std::function<absl::StatusOr<torch::Tensor>(const torch::Tensor&)>;
  BatchedEncoder(int batch_size, Run run) : batch_size_(batch_size), run_(std::move(run)) {}

  // pixels: [3, S, S]
  absl::Status Add(torch::Tensor pixels) {
    pending_.push_back(std::move(pixels));
    if (static_cast<int>(pending_.size()) < batch_size_) return absl::OkStatus();
    return Flush();
  }

  // [N, D]: every added image's embedding, in order.
  absl::StatusOr<torch::Tensor> Finish() {
    LIKENESS_RETURN_IF_ERROR(Flush());
    if (rows_.empty()) return absl::InvalidArgumentError("no images to embed");
    return torch::cat(rows_);
  }

 private:
  absl::Status Flush() {
    if (pending_.empty()) return absl::OkStatus();
    // B x [3, S, S] -> [B, 3, S, S]
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor embeddings, run_(torch::stack(pending_)));
    rows_.push_back(std::move(embeddings));
    pending_.clear();
    return absl::OkStatus();
  }

  int batch_size_;
  Run run_;
  std::vector<torch::Tensor> pending_;
  std::vector<torch::Tensor> rows_;
};

std::string Lowercase(std::string text) {
  absl::AsciiStrToLower(&text);
  return text;
}

bool HasImageExtension(const std::string& name) {
  const std::string lower = Lowercase(name);
  return std::any_of(std::begin(kImageExtensions), std::end(kImageExtensions),
                     [&](const char* ext) { return absl::EndsWith(lower, ext); });
}

absl::Status WithFile(const absl::Status& status, const std::string& path) {
  if (status.ok() || absl::StrContains(status.message(), path)) return status;
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

// [T * T * 3] in [0, 1]: the pixel diversity's view of an image.
absl::StatusOr<torch::Tensor> Thumbnail(const image::Image& rgb8) {
  LIKENESS_ASSIGN_OR_RETURN(
      image::Image small,
      PillowResize(rgb8, kDiversityThumbnailSize, kDiversityThumbnailSize, PillowFilter::kBicubic));
  torch::Tensor t = torch::empty({static_cast<int64_t>(small.pixels.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), small.pixels.data(), small.pixels.size());
  return t.to(torch::kFloat32).div_(kMaxSample);
}

json ModelNotes(const std::string& path, const std::string& weights,
                const model::ConfigSource& config, const std::vector<std::string>& ignored,
                const std::vector<std::string>& unexpected) {
  return {{"path", path},
          {"weights", weights},
          {"config_source", config.description},
          {"config", config.config},
          {"ignored_tensors", ignored},
          {"unexpected_tensors", unexpected}};
}

template <typename F>
absl::StatusOr<torch::Tensor> RunNoGrad(const char* what, F&& forward) {
  try {
    torch::NoGradGuard no_grad;
    return forward().to(torch::kCPU, torch::kFloat32);
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat(what, ": ", error.what_without_backtrace()));
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListImages(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such folder"));
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.front() == '.' || !HasImageExtension(name)) continue;
    std::error_code type_error;
    if (entry.is_regular_file(type_error)) names.push_back(name);
  }
  if (error) {
    return absl::UnavailableError(absl::StrCat(dir, ": cannot list: ", error.message()));
  }
  if (names.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": no images (.png, .jpg, .jpeg or .webp files)"));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<Evaluator> Evaluator::Create(const EvaluatorOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedding batch size must be at least 1, got ", options.batch_size));
  }
  Evaluator evaluator;
  evaluator.options_ = options;
  model::VisionLoadOptions load;
  load.device = options.device;
  if (!options.clip_path.empty()) {
    LIKENESS_ASSIGN_OR_RETURN(model::LoadedClip clip, model::LoadClip(options.clip_path, load));
    evaluator.clip_spec_ =
        PreprocessSpec::Clip(static_cast<int>(clip.vision->config().image_size));
    json notes =
        ModelNotes(options.clip_path, clip.weights_path, clip.config, clip.ignored, clip.unexpected);
    notes["text_tower"] = !clip.text.is_empty();
    if (clip.text.is_empty()) {
      evaluator.clip_text_unavailable_ = absl::StrCat(
          options.clip_path,
          " holds no CLIP text tower (text_model.*, text_projection); CLIP-T needs a full "
          "CLIPModel checkpoint such as openai/clip-vit-large-patch14");
    } else if (options.vocab_path.empty()) {
      evaluator.clip_text_unavailable_ = "no CLIP BPE vocabulary given for the prompts";
    } else {
      absl::StatusOr<text::ClipTokenizer> tokenizer = text::ClipTokenizer::Load(options.vocab_path);
      if (tokenizer.ok()) {
        evaluator.tokenizer_.emplace(*std::move(tokenizer));
      } else {
        evaluator.clip_text_unavailable_ = absl::StrCat("cannot load the CLIP BPE vocabulary: ",
                                                        tokenizer.status().message());
      }
    }
    evaluator.models_["clip"] = std::move(notes);
    evaluator.clip_.emplace(std::move(clip));
  }
  if (!options.dino_path.empty()) {
    LIKENESS_ASSIGN_OR_RETURN(model::LoadedDino dino, model::LoadDino(options.dino_path, load));
    evaluator.dino_spec_ = PreprocessSpec::Dino(static_cast<int>(dino.model->config().image_size));
    json notes =
        ModelNotes(options.dino_path, dino.weights_path, dino.config, dino.ignored, dino.unexpected);
    notes["naming"] = dino.naming;
    evaluator.models_["dino"] = std::move(notes);
    evaluator.dino_.emplace(std::move(dino));
  }
  return evaluator;
}

absl::StatusOr<torch::Tensor> Evaluator::RunClipVision(const torch::Tensor& pixels) {
  return RunNoGrad("CLIP vision encoder", [&] {
    return clip_->vision(pixels.to(options_.device)).image_embeds;
  });
}

absl::StatusOr<torch::Tensor> Evaluator::RunDino(const torch::Tensor& pixels) {
  return RunNoGrad("DINO encoder",
                   [&] { return dino_->model(pixels.to(options_.device)).cls_embedding; });
}

absl::StatusOr<torch::Tensor> Evaluator::ClipImageEmbeddings(
    const std::vector<image::Image>& images) {
  if (!clip_) return absl::FailedPreconditionError("no CLIP model loaded");
  BatchedEncoder encoder(options_.batch_size,
                         [this](const torch::Tensor& pixels) { return RunClipVision(pixels); });
  for (size_t i = 0; i < images.size(); ++i) {
    absl::StatusOr<torch::Tensor> pixels = Preprocess(images[i], clip_spec_);
    if (!pixels.ok()) return WithFile(pixels.status(), absl::StrCat("image ", i));
    LIKENESS_RETURN_IF_ERROR(encoder.Add(*std::move(pixels)));
  }
  return encoder.Finish();
}

absl::StatusOr<torch::Tensor> Evaluator::DinoEmbeddings(const std::vector<image::Image>& images) {
  if (!dino_) return absl::FailedPreconditionError("no DINO model loaded");
  BatchedEncoder encoder(options_.batch_size,
                         [this](const torch::Tensor& pixels) { return RunDino(pixels); });
  for (size_t i = 0; i < images.size(); ++i) {
    absl::StatusOr<torch::Tensor> pixels = Preprocess(images[i], dino_spec_);
    if (!pixels.ok()) return WithFile(pixels.status(), absl::StrCat("image ", i));
    LIKENESS_RETURN_IF_ERROR(encoder.Add(*std::move(pixels)));
  }
  return encoder.Finish();
}

absl::StatusOr<torch::Tensor> Evaluator::ClipTextEmbeddings(
    const std::vector<std::string>& prompts) {
  if (!has_clip_text() || !tokenizer_) {
    return absl::FailedPreconditionError(clip_text_unavailable_.empty() ? "no CLIP text tower"
                                                                        : clip_text_unavailable_);
  }
  if (prompts.empty()) return absl::InvalidArgumentError("no prompts to embed");
  const int length = static_cast<int>(clip_->text->config().max_position_embeddings);
  std::vector<torch::Tensor> rows;
  for (size_t start = 0; start < prompts.size(); start += options_.batch_size) {
    const size_t end = std::min(prompts.size(), start + options_.batch_size);
    std::vector<int64_t> ids;
    ids.reserve((end - start) * length);
    for (size_t i = start; i < end; ++i) {
      // OpenAI's tokenizer pads with <|endoftext|>; the causal mask keeps padding out of the
      // pooled output, which is read at the first <|endoftext|>.
      for (int id : tokenizer_->Tokenize(prompts[i], text::PadStyle::kEndOfText, length)) {
        ids.push_back(id);
      }
    }
    // [B * L] -> [B, L]
    const torch::Tensor batch =
        torch::tensor(ids, torch::kLong).view({static_cast<int64_t>(end - start), length});
    LIKENESS_ASSIGN_OR_RETURN(torch::Tensor embeds, RunNoGrad("CLIP text encoder", [&] {
                                return clip_->text(batch.to(options_.device)).text_embeds;
                              }));
    rows.push_back(std::move(embeds));
  }
  return torch::cat(rows);
}

absl::StatusOr<Evaluator::FolderEmbeddings> Evaluator::EmbedFolder(
    const std::string& dir, const std::vector<std::string>& files, bool generated) {
  BatchedEncoder clip(options_.batch_size,
                      [this](const torch::Tensor& pixels) { return RunClipVision(pixels); });
  BatchedEncoder dino(options_.batch_size,
                      [this](const torch::Tensor& pixels) { return RunDino(pixels); });
  FolderEmbeddings out;
  std::vector<torch::Tensor> thumbnails;
  for (const std::string& name : files) {
    const std::string path = (fs::path(dir) / name).string();
    LIKENESS_ASSIGN_OR_RETURN(image::Image decoded, image::DecodeImageFile(path));
    if (generated) {
      const auto parameters = decoded.text.find(kParametersKeyword);
      out.png_prompts.push_back(parameters == decoded.text.end()
                                    ? std::nullopt
                                    : PromptFromParameters(parameters->second));
    }
    absl::StatusOr<image::Image> rgb = ToRgb8(decoded);
    if (!rgb.ok()) return WithFile(rgb.status(), path);
    if (clip_) {
      absl::StatusOr<torch::Tensor> pixels = Preprocess(*rgb, clip_spec_);
      if (!pixels.ok()) return WithFile(pixels.status(), path);
      LIKENESS_RETURN_IF_ERROR(clip.Add(*std::move(pixels)));
    }
    if (dino_) {
      absl::StatusOr<torch::Tensor> pixels = Preprocess(*rgb, dino_spec_);
      if (!pixels.ok()) return WithFile(pixels.status(), path);
      LIKENESS_RETURN_IF_ERROR(dino.Add(*std::move(pixels)));
    }
    if (generated) {
      absl::StatusOr<torch::Tensor> thumbnail = Thumbnail(*rgb);
      if (!thumbnail.ok()) return WithFile(thumbnail.status(), path);
      thumbnails.push_back(*std::move(thumbnail));
    }
  }
  if (clip_) {
    LIKENESS_ASSIGN_OR_RETURN(out.clip, clip.Finish());
  }
  if (dino_) {
    LIKENESS_ASSIGN_OR_RETURN(out.dino, dino.Finish());
  }
  if (generated) out.thumbnails = torch::stack(thumbnails);  // [N, T * T * 3]
  return out;
}

absl::StatusOr<EvaluationResult> Evaluator::Evaluate(const EvaluationInputs& inputs) {
  EvaluationResult result;
  result.real_dir = inputs.real_dir;
  result.generated_dir = inputs.generated_dir;
  result.identifier = inputs.identifier;
  result.class_noun = inputs.class_noun;
  result.models = models_;
  LIKENESS_ASSIGN_OR_RETURN(result.real_files, ListImages(inputs.real_dir));
  LIKENESS_ASSIGN_OR_RETURN(const std::vector<std::string> generated_files,
                            ListImages(inputs.generated_dir));
  std::error_code error;
  result.same_set = fs::equivalent(inputs.real_dir, inputs.generated_dir, error);
  const int64_t n = static_cast<int64_t>(generated_files.size());

  std::vector<std::optional<std::string>> file_prompts(generated_files.size());
  if (!inputs.prompts_path.empty()) {
    LIKENESS_ASSIGN_OR_RETURN(const PromptFile prompts, ReadPromptFile(inputs.prompts_path));
    LIKENESS_ASSIGN_OR_RETURN(file_prompts, AssignPrompts(prompts, generated_files));
  }

  LIKENESS_ASSIGN_OR_RETURN(const FolderEmbeddings generated,
                            EmbedFolder(inputs.generated_dir, generated_files, true));
  FolderEmbeddings real_storage;
  if (!result.same_set) {
    LIKENESS_ASSIGN_OR_RETURN(real_storage,
                              EmbedFolder(inputs.real_dir, result.real_files, false));
  }
  const FolderEmbeddings& real = result.same_set ? generated : real_storage;

  result.generated.resize(generated_files.size());
  for (size_t i = 0; i < generated_files.size(); ++i) {
    ImageScore& score = result.generated[i];
    score.file = generated_files[i];
    if (file_prompts[i]) {
      score.prompt = file_prompts[i];
      score.prompt_source = kPromptSourceFile;
    } else if (generated.png_prompts[i]) {
      score.prompt = generated.png_prompts[i];
      score.prompt_source = kPromptSourcePng;
    }
  }

  const auto record = [&](const char* key, const absl::StatusOr<double>& value) {
    if (value.ok()) {
      result.metrics[key] = *value;
    } else {
      result.skipped[key] = std::string(value.status().message());
    }
  };
  const std::string too_few_pairs =
      "needs at least 2 images when the real and generated folders are the same";
  const std::string too_few_generated = "needs at least 2 generated images";

  // DINO and CLIP-I: the same computation on two embeddings.
  const auto subject_fidelity = [&](const torch::Tensor& gen, const torch::Tensor& ref,
                                    const char* metric, const char* diversity,
                                    std::optional<double> ImageScore::*per_image) {
    if (result.same_set && n < 2) {
      result.skipped[metric] = too_few_pairs;
    } else {
      absl::StatusOr<torch::Tensor> rows = MeanCosinePerRow(gen, ref, result.same_set);
      if (!rows.ok()) {
        result.skipped[metric] = std::string(rows.status().message());
      } else {
        for (int64_t i = 0; i < n; ++i) result.generated[i].*per_image = (*rows)[i].item<double>();
        record(metric, result.same_set ? MeanPairwiseCosineWithin(ref) : MeanPairwiseCosine(gen, ref));
      }
    }
    if (n < 2) {
      result.skipped[diversity] = too_few_generated;
    } else {
      absl::StatusOr<double> within = MeanPairwiseCosineWithin(gen);
      record(diversity, within.ok() ? absl::StatusOr<double>(1.0 - *within) : within);
    }
  };
  if (dino_) {
    subject_fidelity(generated.dino, real.dino, kMetricDino, kMetricDiversityDino,
                     &ImageScore::dino);
  } else {
    result.skipped[kMetricDino] = result.skipped[kMetricDiversityDino] =
        "no DINO weights given (--dino)";
  }
  if (clip_) {
    subject_fidelity(generated.clip, real.clip, kMetricClipI, kMetricDiversityClip,
                     &ImageScore::clip_i);
  } else {
    result.skipped[kMetricClipI] = result.skipped[kMetricDiversityClip] =
        "no CLIP weights given (--clip)";
  }

  // CLIP-T over the generated images that have a prompt.
  std::vector<int64_t> prompted;
  std::vector<std::string> evaluation_prompts;
  bool identifier_seen = false;
  for (int64_t i = 0; i < n; ++i) {
    ImageScore& score = result.generated[i];
    if (!score.prompt) continue;
    score.evaluation_prompt = EvaluationPrompt(*score.prompt, inputs.identifier, inputs.class_noun);
    identifier_seen |= *score.evaluation_prompt != *score.prompt;
    prompted.push_back(i);
    evaluation_prompts.push_back(*score.evaluation_prompt);
  }
  if (!inputs.identifier.empty() && !prompted.empty() && !identifier_seen) {
    result.warnings.push_back(absl::StrCat("the identifier '", inputs.identifier,
                                           "' appears in no prompt; prompts were scored as given"));
  }
  if (!clip_) {
    result.skipped[kMetricClipT] = "no CLIP weights given (--clip)";
  } else if (!clip_text_unavailable_.empty()) {
    result.skipped[kMetricClipT] = clip_text_unavailable_;
  } else if (prompted.empty()) {
    result.skipped[kMetricClipT] =
        "no prompts: give --prompts FILE, or PNGs with a \"parameters\" text chunk";
  } else {
    LIKENESS_ASSIGN_OR_RETURN(const torch::Tensor text, ClipTextEmbeddings(evaluation_prompts));
    const torch::Tensor image =
        generated.clip.index_select(0, torch::tensor(prompted, torch::kLong));  // [K, P]
    LIKENESS_ASSIGN_OR_RETURN(const torch::Tensor cosines, RowwiseCosine(image, text));
    for (size_t k = 0; k < prompted.size(); ++k) {
      result.generated[prompted[k]].clip_t = cosines[k].item<double>();
    }
    result.metrics[kMetricClipT] = cosines.mean().item<double>();
    if (static_cast<int64_t>(prompted.size()) < n) {
      result.warnings.push_back(absl::StrCat("CLIP-T covers ", prompted.size(), " of ", n,
                                             " generated images; the others have no prompt"));
    }
  }

  if (n < 2) {
    result.skipped[kMetricDiversityPixels] = too_few_generated;
  } else {
    record(kMetricDiversityPixels, MeanPairwiseRmsDistance(generated.thumbnails));
  }
  const std::string no_loss = "not given (the trainer's loss log supplies it)";
  if (inputs.losses.train_loss) {
    result.metrics[kMetricTrainLoss] = *inputs.losses.train_loss;
  } else {
    result.skipped[kMetricTrainLoss] = no_loss;
  }
  if (inputs.losses.heldout_loss) {
    result.metrics[kMetricHeldoutLoss] = *inputs.losses.heldout_loss;
  } else {
    result.skipped[kMetricHeldoutLoss] = no_loss;
  }
  for (const char* name : {"clip", "dino"}) {
    if (!models_.contains(name)) continue;
    const json& unexpected = models_[name]["unexpected_tensors"];
    if (!unexpected.empty()) {
      result.warnings.push_back(absl::StrCat("the ", name, " checkpoint holds ", unexpected.size(),
                                             " tensor(s) no encoder uses: ", unexpected.dump()));
    }
  }
  return result;
}

}  // namespace likeness::eval

// The evaluator: scores a folder of generated images against a folder of real photos of one
// subject with the DreamBench metrics (metrics.h), for `likeness evaluate` and the coordinator's
// evaluate jobs (one job per subject shards a DreamBench run: 30 subjects x 25 prompts x 4
// images become 30 jobs of 100 images).
//
//   EvaluatorOptions options;                 // clip_path, dino_path, vocab_path: all optional
//   absl::StatusOr<Evaluator> evaluator = Evaluator::Create(options);
//   EvaluationInputs inputs;                  // real_dir, generated_dir, prompts, identifier...
//   absl::StatusOr<EvaluationResult> result = evaluator->Evaluate(inputs);
//   WriteEvaluationJson(path, *result);       // evaluation_report.h
//
// Evaluate, step by step:
//   1. list both folders' images (ListImages) and the prompt of each generated one (prompts.h);
//   2. decode each image once, preprocess it for each loaded encoder (preprocess.h), and embed in
//      batches of EvaluatorOptions::batch_size under torch::NoGradGuard, so memory holds one
//      batch of pixels, never a folder;
//   3. compute the metrics each loaded model allows and name every metric it skipped, with why:
//        no weights          -> DINO / CLIP-I / CLIP-T skipped, cheap signals still computed;
//        CLIP without a text tower, no BPE vocabulary, or no prompts -> CLIP-T skipped;
//        fewer than 2 generated images -> diversity skipped;
//        no loss values given -> the loss signals skipped (the trainer's logs supply them).
// When the real and generated folders are the same folder, pairs of an image with itself are
// left out: that is the paper's "Real Images" row (0.774 DINO / 0.885 CLIP-I with real weights).
//
// Models load once in Create, so a worker can evaluate many sweep points with one Evaluator.
// An Evaluator is not thread-safe; use one per thread.
#ifndef LIKENESS_WORKER_EVAL_EVALUATOR_H_
#define LIKENESS_WORKER_EVAL_EVALUATOR_H_

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "worker/eval/preprocess.h"
#include "worker/image/image.h"
#include "worker/model/vision/vision_checkpoint.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::eval {

// Images per encoder forward. For ViT-L/14 at 224 px, 16 images need a few hundred MB of
// activations (one layer's attention scores alone are 16 heads x 257^2 x 16 floats = 68 MB);
// larger batches buy little on a CPU.
inline constexpr int kDefaultEmbeddingBatchSize = 16;
// Side of the thumbnails the pixel diversity compares: enough to tell poses and layouts apart,
// small enough that 100 images are 5 MB.
inline constexpr int kDiversityThumbnailSize = 64;
// File endings (case-insensitive) that ListImages picks up; the decoder still checks the bytes.
inline constexpr const char* kImageExtensions[] = {".png", ".jpg", ".jpeg", ".webp"};

// Metric keys, as in the JSON report.
inline constexpr char kMetricDino[] = "dino";
inline constexpr char kMetricClipI[] = "clip_i";
inline constexpr char kMetricClipT[] = "clip_t";
inline constexpr char kMetricDiversityPixels[] = "diversity_pixels";
inline constexpr char kMetricDiversityDino[] = "diversity_dino";
inline constexpr char kMetricDiversityClip[] = "diversity_clip";
inline constexpr char kMetricTrainLoss[] = "train_loss";
inline constexpr char kMetricHeldoutLoss[] = "heldout_loss";

struct EvaluatorOptions {
  std::string clip_path;   // CLIP weights (vision_checkpoint.h); empty: CLIP-I, CLIP-T skipped
  std::string dino_path;   // DINO weights; empty: DINO skipped
  std::string vocab_path;  // CLIP's BPE vocabulary, for CLIP-T's prompts
  int batch_size = kDefaultEmbeddingBatchSize;
  torch::Device device = torch::kCPU;
};

// Denoising losses the trainer measured; the evaluator reports them beside the image metrics so
// the leaderboard has one row per sweep point.
struct LossSignals {
  std::optional<double> train_loss;
  std::optional<double> heldout_loss;
};

struct EvaluationInputs {
  std::string real_dir;
  std::string generated_dir;
  std::string prompts_path;  // optional (prompts.h); PNG "parameters" are the fallback
  std::string identifier;    // the subject's token in the prompts ("sks"); optional
  std::string class_noun;    // its class ("dog"); optional
  LossSignals losses;
};

struct ImageScore {
  std::string file;  // name in the generated folder
  std::optional<std::string> prompt;             // as generated
  std::string prompt_source;                     // "prompts file", "png parameters" or ""
  std::optional<std::string> evaluation_prompt;  // what CLIP-T scored
  std::optional<double> dino;    // mean cosine with the real images
  std::optional<double> clip_i;  // mean cosine with the real images
  std::optional<double> clip_t;  // cosine with its evaluation prompt
};

struct EvaluationResult {
  std::string real_dir;
  std::string generated_dir;
  std::vector<std::string> real_files;
  bool same_set = false;  // real and generated are one folder: self-pairs left out
  std::string identifier;
  std::string class_noun;
  std::map<std::string, double> metrics;       // kMetric* -> value
  std::map<std::string, std::string> skipped;  // kMetric* -> why it was not computed
  std::vector<ImageScore> generated;
  nlohmann::json models;  // per loaded model: path, config and how it was found, tensor notes
  std::vector<std::string> warnings;
};

// The images of `dir`: regular files whose names end in kImageExtensions, not hidden, sorted by
// name. NOT_FOUND for a missing folder, INVALID_ARGUMENT for a folder without images.
absl::StatusOr<std::vector<std::string>> ListImages(const std::string& dir);

class Evaluator {
 public:
  // Loads the models the options name. Errors name the path (vision_checkpoint.h). A CLIP text
  // tower whose vocabulary cannot be loaded is not an error: CLIP-T is then skipped, saying why.
  static absl::StatusOr<Evaluator> Create(const EvaluatorOptions& options);

  absl::StatusOr<EvaluationResult> Evaluate(const EvaluationInputs& inputs);

  bool has_clip() const { return clip_.has_value(); }
  bool has_clip_text() const { return clip_.has_value() && !clip_->text.is_empty(); }
  bool has_dino() const { return dino_.has_value(); }
  const nlohmann::json& models() const { return models_; }

  // [N, projection_dim] / [N, hidden] float32 on the CPU, rows in the order of `images`;
  // FAILED_PRECONDITION without the model, INVALID_ARGUMENT for an undecodable image.
  absl::StatusOr<torch::Tensor> ClipImageEmbeddings(const std::vector<image::Image>& images);
  absl::StatusOr<torch::Tensor> DinoEmbeddings(const std::vector<image::Image>& images);
  // [N, projection_dim]: the CLIP text embeddings of `prompts` (tokenized as given).
  absl::StatusOr<torch::Tensor> ClipTextEmbeddings(const std::vector<std::string>& prompts);

 private:
  struct FolderEmbeddings {
    torch::Tensor clip;        // [N, P] or undefined
    torch::Tensor dino;        // [N, H] or undefined
    torch::Tensor thumbnails;  // [N, 3 * T * T] in [0, 1], generated folder only
    std::vector<std::optional<std::string>> png_prompts;  // generated folder only
  };

  Evaluator() = default;
  // Steps 1-2 for one folder.
  absl::StatusOr<FolderEmbeddings> EmbedFolder(const std::string& dir,
                                               const std::vector<std::string>& files,
                                               bool generated);
  absl::StatusOr<torch::Tensor> RunClipVision(const torch::Tensor& pixels);
  absl::StatusOr<torch::Tensor> RunDino(const torch::Tensor& pixels);

  EvaluatorOptions options_;
  std::optional<model::LoadedClip> clip_;
  std::optional<model::LoadedDino> dino_;
  std::optional<text::ClipTokenizer> tokenizer_;
  std::string clip_text_unavailable_;  // why CLIP-T cannot run, when it cannot
  PreprocessSpec clip_spec_;
  PreprocessSpec dino_spec_;
  nlohmann::json models_ = nlohmann::json::object();
};

}  // namespace likeness::eval

#endif  // LIKENESS_WORKER_EVAL_EVALUATOR_H_

// The DreamBench metrics on embeddings (DreamBooth, Ruiz et al., CVPR 2023, section 4.1), and the
// paper's reference numbers to print beside ours.
//
//   DINO    mean cosine similarity between the DINO ViT-S/16 [CLS] embeddings of every
//           (generated, real) pair of one subject;
//   CLIP-I  the same with CLIP image embeddings;
//   CLIP-T  mean cosine similarity between each generated image's CLIP image embedding and the
//           CLIP text embedding of its prompt (identifier replaced by the class noun, prompts.h).
// When the generated set IS the real set (the paper's "Real Images" row), the pairs of an image
// with itself are left out: they would add 1.0 each.
//
// Diversity among generations (cheap, no weights): the mean over pairs of the RMS difference of
// their pixels (thumbnails in [0, 1]); with embeddings, 1 - mean pairwise cosine. Higher is more
// diverse.
//
// Everything is computed in float64 from float32 embeddings; inputs are [N, D] tensors on any
// device. Errors (INVALID_ARGUMENT) name the problem: empty sets, width mismatch, a single image
// where pairs are needed.
#ifndef LIKENESS_WORKER_EVAL_METRICS_H_
#define LIKENESS_WORKER_EVAL_METRICS_H_

#include <torch/torch.h>

#include <optional>

#include "absl/status/statusor.h"

namespace likeness::eval {

// DreamBooth paper, Table 1 (subject fidelity DINO / CLIP-I, prompt fidelity CLIP-T).
inline constexpr double kPaperRealImagesDino = 0.774;
inline constexpr double kPaperRealImagesClipI = 0.885;
inline constexpr double kPaperDreamBoothSdDino = 0.668;
inline constexpr double kPaperDreamBoothSdClipI = 0.803;
inline constexpr double kPaperDreamBoothSdClipT = 0.305;
inline constexpr double kPaperTextualInversionDino = 0.569;
inline constexpr double kPaperTextualInversionClipI = 0.780;
inline constexpr double kPaperTextualInversionClipT = 0.255;
inline constexpr char kPaperCitation[] =
    "DreamBooth (Ruiz et al., CVPR 2023), Table 1";

struct ReferenceRow {
  const char* key;    // JSON key
  const char* label;  // table column
  std::optional<double> dino, clip_i, clip_t;
};
inline constexpr ReferenceRow kPaperReferenceRows[] = {
    {"real_images", "real images", kPaperRealImagesDino, kPaperRealImagesClipI, std::nullopt},
    {"dreambooth_sd", "DreamBooth (SD)", kPaperDreamBoothSdDino, kPaperDreamBoothSdClipI,
     kPaperDreamBoothSdClipT},
    {"textual_inversion", "Textual Inversion", kPaperTextualInversionDino,
     kPaperTextualInversionClipI, kPaperTextualInversionClipT},
};

// [N, D] -> [N, D] float64 with unit rows (a zero row stays zero, so its cosines are 0).
torch::Tensor UnitRows(const torch::Tensor& embeddings);

// [N, D], [M, D] -> [N, M] float64 cosine similarities.
absl::StatusOr<torch::Tensor> CosineMatrix(const torch::Tensor& a, const torch::Tensor& b);

// Mean cosine over all N * M pairs (generated x real).
absl::StatusOr<double> MeanPairwiseCosine(const torch::Tensor& a, const torch::Tensor& b);

// Mean cosine over the N * (N - 1) ordered pairs i != j of one set (N >= 2).
absl::StatusOr<double> MeanPairwiseCosineWithin(const torch::Tensor& a);

// Per row: the mean cosine of a[i] with every row of b, leaving out b[i] when `exclude_same_index`
// (a and b are then the same set). [N] float64.
absl::StatusOr<torch::Tensor> MeanCosinePerRow(const torch::Tensor& a, const torch::Tensor& b,
                                               bool exclude_same_index);

// [N, D], [N, D] -> [N] float64: cos(a[i], b[i]) (CLIP-T per image).
absl::StatusOr<torch::Tensor> RowwiseCosine(const torch::Tensor& a, const torch::Tensor& b);

// Mean over the N (N - 1) / 2 pairs of the RMS difference: ||x_i - x_j|| / sqrt(D) (N >= 2).
absl::StatusOr<double> MeanPairwiseRmsDistance(const torch::Tensor& x);

}  // namespace likeness::eval

#endif  // LIKENESS_WORKER_EVAL_METRICS_H_

#include "worker/eval/metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace likeness::eval {
namespace {

absl::Status CheckSet(const torch::Tensor& x, const char* what, int64_t min_rows = 1) {
  if (!x.defined() || x.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": want an [N, D] tensor of embeddings, got ",
                     x.defined() ? c10::str(x.sizes()) : std::string("none")));
  }
  if (x.size(0) < min_rows) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": needs at least ", min_rows,
                                                   " image(s), got ", x.size(0)));
  }
  return absl::OkStatus();
}

absl::Status CheckPair(const torch::Tensor& a, const torch::Tensor& b) {
  if (absl::Status s = CheckSet(a, "first set"); !s.ok()) return s;
  if (absl::Status s = CheckSet(b, "second set"); !s.ok()) return s;
  if (a.size(1) != b.size(1)) {
    return absl::InvalidArgumentError(absl::StrCat("embedding widths differ: ", a.size(1),
                                                   " and ", b.size(1)));
  }
  return absl::OkStatus();
}

}  // namespace

torch::Tensor UnitRows(const torch::Tensor& embeddings) {
  const torch::Tensor x = embeddings.detach().to(torch::kCPU, torch::kFloat64);
  // [N, 1] norms; a zero row divides by 1 and stays zero.
  torch::Tensor norms = x.norm(2, /*dim=*/{1}, /*keepdim=*/true);
  norms = torch::where(norms > 0, norms, torch::ones_like(norms));
  return x / norms;
}

absl::StatusOr<torch::Tensor> CosineMatrix(const torch::Tensor& a, const torch::Tensor& b) {
  if (absl::Status s = CheckPair(a, b); !s.ok()) return s;
  // [N, D] x [D, M] -> [N, M]
  return torch::matmul(UnitRows(a), UnitRows(b).t());
}

absl::StatusOr<double> MeanPairwiseCosine(const torch::Tensor& a, const torch::Tensor& b) {
  absl::StatusOr<torch::Tensor> cos = CosineMatrix(a, b);
  if (!cos.ok()) return cos.status();
  return cos->mean().item<double>();
}

absl::StatusOr<double> MeanPairwiseCosineWithin(const torch::Tensor& a) {
  if (absl::Status s = CheckSet(a, "pairs within a set", 2); !s.ok()) return s;
  const torch::Tensor cos = torch::matmul(UnitRows(a), UnitRows(a).t());  // [N, N]
  const int64_t n = a.size(0);
  // Every ordered pair but the diagonal.
  return (cos.sum().item<double>() - cos.diagonal().sum().item<double>()) /
         static_cast<double>(n * (n - 1));
}

absl::StatusOr<torch::Tensor> MeanCosinePerRow(const torch::Tensor& a, const torch::Tensor& b,
                                               bool exclude_same_index) {
  absl::StatusOr<torch::Tensor> cos = CosineMatrix(a, b);
  if (!cos.ok()) return cos.status();
  if (!exclude_same_index) return cos->mean(1);
  if (a.size(0) != b.size(0) || a.size(0) < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaving out pairs of an image with itself needs one set of at least 2 images, got ",
        a.size(0), " and ", b.size(0)));
  }
  // [N] sums without the diagonal, over N - 1 partners.
  return (cos->sum(1) - cos->diagonal()) / static_cast<double>(b.size(0) - 1);
}

absl::StatusOr<torch::Tensor> RowwiseCosine(const torch::Tensor& a, const torch::Tensor& b) {
  if (absl::Status s = CheckPair(a, b); !s.ok()) return s;
  if (a.size(0) != b.size(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row-wise cosine needs as many rows on both sides: ", a.size(0), " and ",
                     b.size(0)));
  }
  // [N, D] * [N, D] summed over D -> [N]
  return (UnitRows(a) * UnitRows(b)).sum(1);
}

absl::StatusOr<double> MeanPairwiseRmsDistance(const torch::Tensor& x) {
  if (absl::Status s = CheckSet(x, "diversity", 2); !s.ok()) return s;
  const torch::Tensor v = x.detach().to(torch::kCPU, torch::kFloat64);
  const int64_t n = v.size(0);
  // [N, N] Euclidean distances; the upper triangle holds each unordered pair once.
  const torch::Tensor distances = torch::cdist(v.unsqueeze(0), v.unsqueeze(0)).squeeze(0);
  const double sum = distances.triu(1).sum().item<double>();
  const double pairs = static_cast<double>(n * (n - 1) / 2);
  return sum / pairs / std::sqrt(static_cast<double>(v.size(1)));
}

}  // namespace likeness::eval

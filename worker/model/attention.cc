#include "worker/model/attention.h"

#include <cmath>
#include <limits>

namespace likeness::model {

torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& options) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "Attention wants [B, H, N, d] tensors");
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  // The fused kernel (issue 8) plugs in here for CUDA tensors; until then every path is the
  // reference, which is what kAuto means on CPU anyway.
  const bool upcast = options.upcast && (q.scalar_type() == torch::kHalf || q.scalar_type() == torch::kBFloat16);
  const torch::Tensor qc = upcast ? q.to(torch::kFloat32) : q;
  const torch::Tensor kc = upcast ? k.to(torch::kFloat32) : k;
  // [B, H, Nq, d] x [B, H, d, Nk] -> [B, H, Nq, Nk]
  torch::Tensor scores = torch::matmul(qc, kc.transpose(-1, -2)).mul_(scale);
  if (options.mask.defined()) scores = scores + options.mask.to(scores.scalar_type());
  torch::Tensor probs = torch::softmax(scores, -1).to(v.scalar_type());
  // [B, H, Nq, Nk] x [B, H, Nk, d] -> [B, H, Nq, d]
  return torch::matmul(probs, v);
}

torch::Tensor CausalMask(int64_t n, torch::Dtype dtype, torch::Device device) {
  torch::Tensor mask = torch::full({n, n}, -std::numeric_limits<float>::infinity(),
                                   torch::TensorOptions().dtype(dtype).device(device));
  return mask.triu_(1).view({1, 1, n, n});
}

}  // namespace likeness::model

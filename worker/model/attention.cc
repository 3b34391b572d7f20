#include "worker/model/attention.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/torch_compat.h"
#include "worker/model/flash_attention.h"

namespace likeness::model {
namespace {

AttentionBackend BackendFromEnvironment() {
  const char* value = std::getenv(kAttentionBackendEnv);
  if (value == nullptr || *value == '\0') return AttentionBackend::kAuto;
  const std::optional<AttentionBackend> parsed = ParseAttentionBackend(value);
  TORCH_CHECK(parsed.has_value(), kAttentionBackendEnv, "='", value,
              "' is not one of auto, fused, sdpa, reference");
  return *parsed;
}

std::atomic<AttentionBackend>& DefaultBackendSlot() {
  static std::atomic<AttentionBackend> slot(BackendFromEnvironment());
  return slot;
}

torch::Tensor MathAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const AttentionOptions& options, double scale) {
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

torch::Tensor SdpaAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const AttentionOptions& options, double scale) {
  torch::Tensor mask = options.mask.defined() ? options.mask.to(q.scalar_type()) : torch::Tensor();
  return compat::ScaledDotProductAttention(q, k, v, mask, scale);
}

}  // namespace

std::optional<AttentionBackend> ParseAttentionBackend(const std::string& name) {
  if (name == "auto") return AttentionBackend::kAuto;
  if (name == "fused") return AttentionBackend::kFused;
  if (name == "sdpa") return AttentionBackend::kTorchSdpa;
  if (name == "reference") return AttentionBackend::kReference;
  return std::nullopt;
}

AttentionBackend DefaultAttentionBackend() { return DefaultBackendSlot().load(); }
void SetDefaultAttentionBackend(AttentionBackend backend) { DefaultBackendSlot().store(backend); }

torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& options) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "Attention wants [B, H, N, d] tensors");
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  AttentionBackend backend = options.backend;
  if (backend == AttentionBackend::kAuto) backend = DefaultAttentionBackend();
  switch (backend) {
    case AttentionBackend::kReference:
      return MathAttention(q, k, v, options, scale);
    case AttentionBackend::kTorchSdpa:
      return SdpaAttention(q, k, v, options, scale);
    case AttentionBackend::kFused: {
      TORCH_CHECK(!options.mask.defined(), "the fused attention kernel takes no mask");
      const std::string unsupported = FlashAttentionUnsupported(q, k, v);
      TORCH_CHECK(unsupported.empty(), "fused attention forced but unsupported here: ", unsupported);
      return FlashAttention(q, k, v, scale);
    }
    case AttentionBackend::kAuto:
      break;
  }
  if (!q.is_cuda()) return MathAttention(q, k, v, options, scale);
  // Masks are CLIP's causal one (77 tokens: the math path costs nothing there).
  if (!options.mask.defined() && FlashAttentionUnsupported(q, k, v).empty()) return FlashAttention(q, k, v, scale);
  if (compat::kHasScaledDotProductAttention) return SdpaAttention(q, k, v, options, scale);
  return MathAttention(q, k, v, options, scale);
}

torch::Tensor CausalMask(int64_t n, torch::Dtype dtype, torch::Device device) {
  torch::Tensor mask = torch::full({n, n}, -std::numeric_limits<float>::infinity(),
                                   torch::TensorOptions().dtype(dtype).device(device));
  return mask.triu_(1).view({1, 1, n, n});
}

}  // namespace likeness::model

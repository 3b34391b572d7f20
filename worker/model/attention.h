// The one attention function every attention layer calls (UNet self/cross attention, the VAE's
// mid-block attention, the CLIP text and vision encoders). It dispatches: the fused CUDA kernel
// (kernels/, issue 8) for CUDA tensors it supports, the math reference otherwise. Keeping one
// entry point means the kernel, its fallback and any future backend are swapped in one place.
#ifndef LIKENESS_WORKER_MODEL_ATTENTION_H_
#define LIKENESS_WORKER_MODEL_ATTENTION_H_

#include <torch/torch.h>

#include <optional>

namespace likeness::model {

enum class AttentionBackend {
  kAuto,       // the fused kernel where it applies, else the math reference
  kReference,  // always the math reference (for tests and debugging)
};

struct AttentionOptions {
  // Softmax scale; 1/sqrt(head_dim) when unset.
  std::optional<double> scale;
  // Additive mask broadcastable to [B, H, Nq, Nk] (0 keeps, -inf drops): CLIP's causal mask.
  torch::Tensor mask;
  // Compute q·k and softmax in float32 for half inputs (diffusers' upcast_attention/upcast_softmax).
  bool upcast = true;
  AttentionBackend backend = AttentionBackend::kAuto;
};

// q: [B, H, Nq, d], k and v: [B, H, Nk, d] -> [B, H, Nq, d] in q's dtype.
torch::Tensor Attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& options = {});

// The causal mask CLIP's text encoders use: [1, 1, n, n], 0 on and below the diagonal, -inf above.
torch::Tensor CausalMask(int64_t n, torch::Dtype dtype, torch::Device device);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_ATTENTION_H_

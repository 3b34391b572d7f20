// The one attention function every attention layer calls (UNet self/cross attention, the VAE's
// mid-block attention, the CLIP text and vision encoders). It dispatches: the fused CUDA kernel
// (kernels/, issue 8) for CUDA tensors it supports, the math reference otherwise. Keeping one
// entry point means the kernel, its fallback and any future backend are swapped in one place.
#ifndef LIKENESS_WORKER_MODEL_ATTENTION_H_
#define LIKENESS_WORKER_MODEL_ATTENTION_H_

#include <torch/torch.h>

#include <optional>
#include <string>

namespace likeness::model {

enum class AttentionBackend {
  kAuto,       // CUDA: the fused kernel where it applies, else torch's SDPA (libtorch 2.x), else
               // the math reference; CPU: the math reference (the golden tests' bit-exact path)
  kReference,  // always the math reference (for tests and debugging)
  kFused,      // always the fused kernel; an error where it does not apply
  kTorchSdpa,  // at::scaled_dot_product_attention (libtorch 2.x); an error on 1.13
};

// The backend kAuto resolves to for the process, settable by LIKENESS_ATTENTION
// (auto | fused | sdpa | reference) or SetDefaultAttentionBackend.
inline constexpr char kAttentionBackendEnv[] = "LIKENESS_ATTENTION";
AttentionBackend DefaultAttentionBackend();
void SetDefaultAttentionBackend(AttentionBackend backend);
// "auto", "fused", "sdpa", "reference"; nullopt for anything else.
std::optional<AttentionBackend> ParseAttentionBackend(const std::string& name);

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

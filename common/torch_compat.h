// The one place that knows the differences between libtorch 1.13 (Debian, CPU machines and CI)
// and libtorch 2.x (PyTorch 2.11 + CUDA 13 on the GPU machine). No other file tests a version
// macro; add a helper here instead.
#ifndef LIKENESS_COMMON_TORCH_COMPAT_H_
#define LIKENESS_COMMON_TORCH_COMPAT_H_

#include <torch/torch.h>
#include <torch/version.h>

namespace likeness::compat {

inline constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
inline constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// Float8 dtypes arrived in libtorch 2.1. Where they are missing, safetensors F8 tensors are
// widened to float32 on load.
#if (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1) || TORCH_VERSION_MAJOR > 2
inline constexpr bool kHasFloat8 = true;
inline constexpr c10::ScalarType kFloat8E4M3 = c10::ScalarType::Float8_e4m3fn;
inline constexpr c10::ScalarType kFloat8E5M2 = c10::ScalarType::Float8_e5m2;
#else
inline constexpr bool kHasFloat8 = false;
inline constexpr c10::ScalarType kFloat8E4M3 = c10::ScalarType::Undefined;
inline constexpr c10::ScalarType kFloat8E5M2 = c10::ScalarType::Undefined;
#endif

// at::scaled_dot_product_attention exists from 2.0; 1.13 uses the math path only.
#if TORCH_VERSION_MAJOR >= 2
inline constexpr bool kHasScaledDotProductAttention = true;
#else
inline constexpr bool kHasScaledDotProductAttention = false;
#endif

// softmax(scale * q k^T + mask) v through at::scaled_dot_product_attention (torch picks flash,
// cuDNN or memory-efficient kernels); 1.13 has no such op and callers check the flag first.
inline torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k,
                                               const torch::Tensor& v, const torch::Tensor& mask,
                                               double scale) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt,
                                          /*dropout_p=*/0.0, /*is_causal=*/false, scale);
#else
  TORCH_CHECK(false, "scaled_dot_product_attention needs libtorch 2.x (this is ", TORCH_VERSION, ")");
  return {};
#endif
}

// The backends of at::scaled_dot_product_attention, one at a time (benchmarks compare them).
enum class SdpaBackend { kAll, kFlash, kEfficient, kCudnn, kMath };
// Enables only `backend` (kAll: every one). False where this libtorch lacks it.
inline bool SelectSdpaBackend(SdpaBackend backend) {
#if TORCH_VERSION_MAJOR >= 2
  auto& context = at::globalContext();
  const bool all = backend == SdpaBackend::kAll;
  context.setSDPUseFlash(all || backend == SdpaBackend::kFlash);
  context.setSDPUseMemEfficient(all || backend == SdpaBackend::kEfficient);
  context.setSDPUseMath(all || backend == SdpaBackend::kMath);
  context.setSDPUseCuDNN(all || backend == SdpaBackend::kCudnn);
  return true;
#else
  return backend == SdpaBackend::kAll;
#endif
}

}  // namespace likeness::compat

#endif  // LIKENESS_COMMON_TORCH_COMPAT_H_

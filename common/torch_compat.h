// The one place that knows the differences between libtorch 1.13 (Debian, CPU machines and CI)
// and libtorch 2.x (PyTorch 2.11 + CUDA 13 on the GPU machine). No other file tests a version
// macro; add a helper here instead.
#ifndef LIKENESS_COMMON_TORCH_COMPAT_H_
#define LIKENESS_COMMON_TORCH_COMPAT_H_

#include <torch/torch.h>
#include <torch/version.h>

#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <ATen/autocast_mode.h>

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

// torch.autocast("cuda", dtype) for the scope of the object: matmuls and convolutions run in
// `dtype` (bf16 for training), reductions and norms in float32, master weights stay as they
// are. libtorch 2.4 replaced the CUDA-only calls (set_enabled, set_autocast_gpu_dtype) by
// per-device-type ones; 1.13 has only the former. Nested guards restore the outer state.
class CudaAutocast {
 public:
  explicit CudaAutocast(c10::ScalarType dtype) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    previous_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
#endif
    at::autocast::increment_nesting();
  }
  ~CudaAutocast() {
    // The cast-weight cache lives while any guard does (as torch.autocast's __exit__).
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, previous_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
#else
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
#endif
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool previous_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Half;
};

// The dtype CUDA autocast casts to when it is on in this thread, else nullopt: activation
// checkpointing records it at forward and re-enters it for the recomputation in backward
// (which runs outside the caller's guard), as torch.utils.checkpoint does.
inline std::optional<c10::ScalarType> ActiveCudaAutocastDtype() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (!at::autocast::is_autocast_enabled(at::kCUDA)) return std::nullopt;
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  if (!at::autocast::is_enabled()) return std::nullopt;
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

// Turns autocast's weight-cast cache off for a scope. The cache keeps the first bf16 copy of a
// float32 weight for the rest of the autocast region; a copy made under no_grad (a checkpointed
// block's first forward) has no autograd history, and the recomputation would reuse it and
// lose that weight's gradient.
class AutocastCacheDisabled {
 public:
  AutocastCacheDisabled() : previous_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~AutocastCacheDisabled() { at::autocast::set_autocast_cache_enabled(previous_); }
  AutocastCacheDisabled(const AutocastCacheDisabled&) = delete;
  AutocastCacheDisabled& operator=(const AutocastCacheDisabled&) = delete;

 private:
  bool previous_;
};

// The CUDA caching allocator's statistics for `device`, from c10_cuda when the libtorch this
// build links has CUDA (common/torch_compat.cc; the Debian CPU libtorch has no c10_cuda
// library to link). Without it: has_cuda_allocator is false and the figures are 0.
struct CudaMemoryStats {
  bool has_cuda_allocator = false;
  int64_t peak_allocated_bytes = 0;  // most bytes held by tensors at once
  int64_t peak_reserved_bytes = 0;   // most bytes the allocator held from the driver
};
CudaMemoryStats GetCudaMemoryStats(int device);
// Starts a new peak window (the next GetCudaMemoryStats peaks count from now).
void ResetCudaPeakMemory(int device);
// Returns cached blocks to the driver (between benchmark configurations).
void EmptyCudaCache();

// Runs `hook` each time autograd has accumulated a gradient into the leaf `leaf` (the trigger
// of the data-parallel reducer, as in PyTorch DDP). The hook is a post hook on the leaf's
// AccumulateGrad node; libtorch 1.13 and 2.x share Node::add_post_hook and FunctionPostHook's
// signature (2.x adds Tensor::register_post_accumulate_grad_hook in Python only). The tensor
// holds its accumulator weakly: keep the returned node alive as long as the hook should fire.
class PostAccumulateGradHook : public torch::autograd::FunctionPostHook {
 public:
  explicit PostAccumulateGradHook(std::function<void()> hook) : hook_(std::move(hook)) {}
  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    hook_();
    return outputs;
  }

 private:
  std::function<void()> hook_;
};

inline std::shared_ptr<torch::autograd::Node> AddPostAccumulateGradHook(
    const torch::Tensor& leaf, std::function<void()> hook) {
  std::shared_ptr<torch::autograd::Node> node = torch::autograd::impl::grad_accumulator(leaf);
  if (node != nullptr) node->add_post_hook(std::make_unique<PostAccumulateGradHook>(std::move(hook)));
  return node;
}

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

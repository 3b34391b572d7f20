// The torch-free interface of the fused attention kernels (issue 8): raw pointers and element
// strides, so the kernels library builds without libtorch and any caller can drive it.
//
// Layout: q, k, v, out, dq, dk, dv are [batch, heads, rows, head_dim] addressed through
// (batch, head, row) strides with head_dim contiguous, which is what our modules produce
// (a [B, N, H*d] projection viewed as [B, H, N, d]) — no transposes around the kernel.
// lse and delta are [batch, heads, rows_q] float32, contiguous. dq_accum is float32 with the
// same strides as dq's float32 buffer (contiguous [B, H, Nq, head_dim] in practice).
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_PARAMS_H_
#define LIKENESS_KERNELS_ATTENTION_FLASH_PARAMS_H_

#include <cstdint>
#include <string>

namespace likeness::kernels::flash {

enum class FlashDtype { kBFloat16, kFloat16 };

// Strides in elements of one [B, H, N, d] operand.
struct Strides {
  int64_t batch = 0;
  int64_t head = 0;
  int64_t row = 0;
};

struct FlashForwardParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // natural-log logsumexp of the scaled scores, per query row
  Strides q_strides, k_strides, v_strides, out_strides;
  int batch = 0;
  int heads = 0;
  int seqlen_q = 0;
  int seqlen_k = 0;
  int head_dim = 0;
  float scale = 1.0f;
  FlashDtype dtype = FlashDtype::kBFloat16;
};

struct FlashBackwardParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* dout = nullptr;
  const float* lse = nullptr;    // from the forward
  const float* delta = nullptr;  // rowsum(dout * out), per query row
  float* dq_accum = nullptr;     // zeroed by the caller; the kernel adds into it
  void* dk = nullptr;
  void* dv = nullptr;
  Strides q_strides, k_strides, v_strides, dout_strides, dq_accum_strides, dk_strides, dv_strides;
  int batch = 0;
  int heads = 0;
  int seqlen_q = 0;
  int seqlen_k = 0;
  int head_dim = 0;
  float scale = 1.0f;
  FlashDtype dtype = FlashDtype::kBFloat16;
};

// The largest head dimension the kernels take; smaller ones run padded to 64 or 128.
inline constexpr int kFlashMaxHeadDim = 128;
// Loads move 16 bytes (8 half-precision elements): head_dim and every stride must be a
// multiple of this, and the pointers 16-byte aligned.
inline constexpr int kFlashElementsPerLoad = 8;

// Whether this build has the kernels (nvcc was found) — the CPU stub answers false.
bool FlashCompiled();
// An empty string when the parameters are ones the kernels take, else why not.
std::string FlashUnsupportedReason(const FlashForwardParams& params);
// Launch on `stream` (a cudaStream_t; nullptr = the legacy default stream). Empty string on
// success, else the error (unsupported parameters or a CUDA error, named).
std::string FlashForward(const FlashForwardParams& params, void* stream);
std::string FlashBackward(const FlashBackwardParams& params, void* stream);

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_PARAMS_H_

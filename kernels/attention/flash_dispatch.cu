// The compile-time dispatch: (padded head dim, dtype) -> one instantiated launcher.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/attention/flash_launch.h"
#include "kernels/attention/flash_params.h"

namespace likeness::kernels::flash {
namespace {

// Grid y carries batch * heads.
constexpr int kMaxGridY = 65535;

template <int kHeadDim, typename Params, typename Launch>
std::string DispatchDtype(const Params& params, Launch&& launch) {
  if (params.dtype == FlashDtype::kBFloat16) return launch(FlashTraits<kHeadDim, __nv_bfloat16>{});
  return launch(FlashTraits<kHeadDim, __half>{});
}

template <typename Params, typename Launch>
std::string DispatchHeadDim(const Params& params, Launch&& launch) {
  if (params.head_dim <= 64) return DispatchDtype<64>(params, launch);
  return DispatchDtype<128>(params, launch);
}

bool Aligned(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }
bool StridesAligned(const Strides& s) {
  return s.batch % kFlashElementsPerLoad == 0 && s.head % kFlashElementsPerLoad == 0 &&
         s.row % kFlashElementsPerLoad == 0;
}

std::string CommonReason(int batch, int heads, int seqlen_q, int seqlen_k, int head_dim) {
  if (batch <= 0 || heads <= 0 || seqlen_q <= 0 || seqlen_k <= 0) return "empty attention";
  if (head_dim <= 0 || head_dim > kFlashMaxHeadDim || head_dim % kFlashElementsPerLoad != 0) {
    return "head_dim " + std::to_string(head_dim) + " is not a multiple of 8 up to 128";
  }
  if (static_cast<int64_t>(batch) * heads > kMaxGridY) return "batch * heads above 65535";
  return "";
}

}  // namespace

bool FlashCompiled() { return true; }

std::string FlashUnsupportedReason(const FlashForwardParams& p) {
  std::string reason = CommonReason(p.batch, p.heads, p.seqlen_q, p.seqlen_k, p.head_dim);
  if (!reason.empty()) return reason;
  if (!Aligned(p.q) || !Aligned(p.k) || !Aligned(p.v) || !Aligned(p.out)) return "a pointer is not 16-byte aligned";
  if (!StridesAligned(p.q_strides) || !StridesAligned(p.k_strides) || !StridesAligned(p.v_strides) ||
      !StridesAligned(p.out_strides)) {
    return "a stride is not a multiple of 8 elements";
  }
  return "";
}

std::string FlashForward(const FlashForwardParams& params, void* stream) {
  const std::string reason = FlashUnsupportedReason(params);
  if (!reason.empty()) return "flash forward: " + reason;
  return DispatchHeadDim(params, [&](auto traits) {
    return RunFlashForward<decltype(traits)>(params, static_cast<cudaStream_t>(stream));
  });
}

std::string FlashBackward(const FlashBackwardParams& p, void* stream) {
  std::string reason = CommonReason(p.batch, p.heads, p.seqlen_q, p.seqlen_k, p.head_dim);
  if (reason.empty() && (!Aligned(p.q) || !Aligned(p.k) || !Aligned(p.v) || !Aligned(p.dout) ||
                         !Aligned(p.dk) || !Aligned(p.dv))) {
    reason = "a pointer is not 16-byte aligned";
  }
  if (reason.empty() && (!StridesAligned(p.q_strides) || !StridesAligned(p.k_strides) ||
                         !StridesAligned(p.v_strides) || !StridesAligned(p.dout_strides) ||
                         !StridesAligned(p.dk_strides) || !StridesAligned(p.dv_strides))) {
    reason = "a stride is not a multiple of 8 elements";
  }
  if (!reason.empty()) return "flash backward: " + reason;
  return DispatchHeadDim(p, [&](auto traits) {
    return RunFlashBackward<decltype(traits)>(p, static_cast<cudaStream_t>(stream));
  });
}

}  // namespace likeness::kernels::flash

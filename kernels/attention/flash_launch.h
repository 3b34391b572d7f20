// The per-(head dim, dtype) launchers, instantiated one per file (flash_{fwd,bwd}_hdim*_*.cu).
#ifndef LIKENESS_KERNELS_ATTENTION_FLASH_LAUNCH_H_
#define LIKENESS_KERNELS_ATTENTION_FLASH_LAUNCH_H_

#include <cuda_runtime.h>

#include <string>

#include "kernels/attention/flash_params.h"
#include "kernels/attention/flash_traits.h"

namespace likeness::kernels::flash {

template <typename Traits>
std::string RunFlashForward(const FlashForwardParams& params, cudaStream_t stream);
template <typename Traits>
std::string RunFlashBackward(const FlashBackwardParams& params, cudaStream_t stream);

}  // namespace likeness::kernels::flash

#endif  // LIKENESS_KERNELS_ATTENTION_FLASH_LAUNCH_H_

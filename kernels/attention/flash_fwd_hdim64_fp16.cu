// One instantiation per file: the (head dim, dtype) pairs compile in parallel, and a change to
// one tile choice recompiles one file. Architectures come from CMAKE_CUDA_ARCHITECTURES.
#include "kernels/attention/flash_fwd_kernel.cuh"

namespace likeness::kernels::flash {

template std::string RunFlashForward<FlashTraits<64, __half>>(const FlashForwardParams&, cudaStream_t);

}  // namespace likeness::kernels::flash

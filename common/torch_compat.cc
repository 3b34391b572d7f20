// The parts of torch_compat.h that need a CUDA-enabled libtorch's c10_cuda library.
// LIKENESS_TORCH_HAS_CUDA is set by common/CMakeLists.txt when that library is a target.
#include "common/torch_compat.h"

#if LIKENESS_TORCH_HAS_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace likeness::compat {

#if LIKENESS_TORCH_HAS_CUDA
// StatType::AGGREGATE (all pools) is index 0 in every version from 1.13 to 2.11, under
// c10::cuda::CUDACachingAllocator in 1.13 and c10::CachingDeviceAllocator in 2.x.
constexpr size_t kAggregateStat = 0;

CudaMemoryStats GetCudaMemoryStats(int device) {
  CudaMemoryStats out;
  if (!torch::cuda::is_available()) return out;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  out.has_cuda_allocator = true;
  out.peak_allocated_bytes = stats.allocated_bytes[kAggregateStat].peak;
  out.peak_reserved_bytes = stats.reserved_bytes[kAggregateStat].peak;
  return out;
}

void ResetCudaPeakMemory(int device) {
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::resetPeakStats(device);
}

void EmptyCudaCache() {
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
}
#else
CudaMemoryStats GetCudaMemoryStats(int) { return {}; }
void ResetCudaPeakMemory(int) {}
void EmptyCudaCache() {}
#endif

}  // namespace likeness::compat

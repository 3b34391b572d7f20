// Which NCCL this build links, if any: proof that the link works, and what `likeness version`
// reports. Torch-free and CUDA-runtime-free, so any binary may call it.
#ifndef LIKENESS_KERNELS_NCCL_INFO_H_
#define LIKENESS_KERNELS_NCCL_INFO_H_

#include <string>

namespace likeness::kernels {

// "2.27.3" from ncclGetVersion, or "" when the build has no NCCL.
std::string NcclVersion();

}  // namespace likeness::kernels

#endif  // LIKENESS_KERNELS_NCCL_INFO_H_

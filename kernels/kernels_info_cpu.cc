// kernels_info.h for builds without nvcc.
#include "kernels/kernels_info.h"

namespace likeness::kernels {

bool CompiledWithCuda() { return false; }
std::string CompiledCudaArchitectures() { return ""; }
int CudaDeviceCount() { return 0; }
std::string RunCudaSmokeKernel(int) { return "built without CUDA"; }

}  // namespace likeness::kernels

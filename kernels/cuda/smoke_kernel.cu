// A deliberately tiny kernel: it proves the CUDA toolchain, the architectures and the
// runtime link work in every build. The fused attention kernels (issue 8) live beside it.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "kernels/kernels_info.h"

namespace likeness::kernels {
namespace {

constexpr int kSmokeThreadsPerBlock = 128;

__global__ void SquareIndexKernel(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i * i;
}

std::string CudaErrorText(const char* what, cudaError_t err) {
  return std::string(what) + ": " + cudaGetErrorString(err);
}

}  // namespace

bool CompiledWithCuda() { return true; }

std::string CompiledCudaArchitectures() { return LIKENESS_CUDA_ARCHITECTURES; }

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // Clears the sticky "no driver" error for later callers.
    return 0;
  }
  return count;
}

std::string RunCudaSmokeKernel(int n) {
  if (n <= 0) return "n must be positive";
  int* device = nullptr;
  if (cudaError_t err = cudaMalloc(&device, sizeof(int) * n); err != cudaSuccess) {
    return CudaErrorText("cudaMalloc", err);
  }
  const int blocks = (n + kSmokeThreadsPerBlock - 1) / kSmokeThreadsPerBlock;
  SquareIndexKernel<<<blocks, kSmokeThreadsPerBlock>>>(device, n);
  std::vector<int> host(n);
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaMemcpy(host.data(), device, sizeof(int) * n, cudaMemcpyDeviceToHost);
  cudaFree(device);
  if (err != cudaSuccess) return CudaErrorText("smoke kernel", err);
  for (int i = 0; i < n; ++i) {
    if (host[i] != i * i) return "smoke kernel wrote a wrong value at index " + std::to_string(i);
  }
  return "";
}

}  // namespace likeness::kernels

// What the kernels library was built with and what it can see at run time. Torch-free, so
// every binary can report it cheaply (`likeness version`, `likeness-worker --help`).
#ifndef LIKENESS_KERNELS_KERNELS_INFO_H_
#define LIKENESS_KERNELS_KERNELS_INFO_H_

#include <string>

namespace likeness::kernels {

// True when kernels/ was compiled by nvcc.
bool CompiledWithCuda();

// The CUDA architectures compiled in ("80;90a"), empty without CUDA.
std::string CompiledCudaArchitectures();

// Devices visible now; 0 without CUDA, without a driver, or without a GPU.
int CudaDeviceCount();

// Runs a tiny kernel on device 0 (writes i*i into n ints, reads them back) and returns an
// empty string on success or what went wrong. Only meaningful when CudaDeviceCount() > 0.
std::string RunCudaSmokeKernel(int n);

}  // namespace likeness::kernels

#endif  // LIKENESS_KERNELS_KERNELS_INFO_H_

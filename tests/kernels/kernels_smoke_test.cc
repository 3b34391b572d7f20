#include "gtest/gtest.h"
#include "kernels/kernels_info.h"

namespace likeness::kernels {
namespace {

constexpr int kSmokeElements = 1000;

TEST(KernelsSmokeTest, TinyKernelRunsOnDevice) {
  if (!CompiledWithCuda()) GTEST_SKIP() << "built without CUDA";
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device visible";
  EXPECT_EQ(RunCudaSmokeKernel(kSmokeElements), "");
}

TEST(KernelsSmokeTest, ArchitecturesAreReportedWhenCompiled) {
  if (!CompiledWithCuda()) GTEST_SKIP() << "built without CUDA";
  EXPECT_FALSE(CompiledCudaArchitectures().empty());
}

}  // namespace
}  // namespace likeness::kernels

#include "gtest/gtest.h"
#include "kernels/nccl_info.h"

namespace likeness::kernels {
namespace {

// ncclGetVersion needs no device, so this proves the NCCL link on every machine with NCCL.
TEST(NcclInfoTest, LinkedNcclReportsItsVersion) {
  if (NcclVersion().empty()) GTEST_SKIP() << "built without NCCL";
  EXPECT_EQ(NcclVersion().substr(0, 2), "2.");
}

}  // namespace
}  // namespace likeness::kernels

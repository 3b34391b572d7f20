#include "kernels/nccl_info.h"

#include <nccl.h>

namespace likeness::kernels {
namespace {

// ncclGetVersion encodes major*10000 + minor*100 + patch since NCCL 2.9.
constexpr int kMajorFactor = 10000;
constexpr int kMinorFactor = 100;

}  // namespace

std::string NcclVersion() {
  int code = 0;
  if (ncclGetVersion(&code) != ncclSuccess) return "";
  return std::to_string(code / kMajorFactor) + "." + std::to_string(code % kMajorFactor / kMinorFactor) + "." +
         std::to_string(code % kMinorFactor);
}

}  // namespace likeness::kernels

// nccl_info.h for builds without NCCL.
#include "kernels/nccl_info.h"

namespace likeness::kernels {

std::string NcclVersion() { return ""; }

}  // namespace likeness::kernels

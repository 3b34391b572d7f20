// nccl_communicator.h for builds without NCCL.
#include "worker/dist/nccl_communicator.h"

namespace likeness::dist {

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    const DistEnvironment& env, std::unique_ptr<Communicator> mpi, const MpiOptions& options) {
  return absl::FailedPreconditionError(
      "dist: this build has no NCCL (build with CUDA and NCCL, LIKENESS_WITH_NCCL)");
}

bool HaveNccl() { return false; }

}  // namespace likeness::dist

// mpi_communicator.h for builds without MPI.
#include "worker/dist/mpi_communicator.h"

namespace likeness::dist {

absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator(const DistEnvironment& env,
                                                                   const MpiOptions& options) {
  return absl::FailedPreconditionError(
      "dist: this build has no MPI (install Open MPI and reconfigure, LIKENESS_WITH_MPI)");
}

bool HaveMpi() { return false; }

}  // namespace likeness::dist

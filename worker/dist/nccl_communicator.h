// The NCCL communicator: CUDA tensors, compiled only when LIKENESS_HAVE_NCCL.
//
// Bootstrap and deadline protocol (communicator.h's steps, NCCL flavour):
//   1. the local rank picks the GPU (cudaSetDevice(local_rank)); device() is cuda:<local_rank>;
//   2. rank 0 makes the ncclUniqueId and broadcasts it over the MPI communicator (which keeps
//      serving Barrier and AllGather of small values: no GPU round trip for a flag);
//   3. the NCCL communicator is non-blocking (ncclConfig_t.blocking = 0): init and every
//      collective return at once, and ncclCommGetAsyncError is polled against the deadline;
//   4. collectives run on a private non-blocking stream that first waits for the legacy
//      default stream (where libtorch runs unless a caller picks a stream), so they overlap
//      the backward kernels; completion is a CUDA event polled with cudaEventQuery;
//   5. on error or timeout: ncclCommAbort (frees the stuck kernels), then as MPI: message to
//      stderr and MPI_Abort(kRequeueExitCode), or the status when abort_on_error is false.
#ifndef LIKENESS_WORKER_DIST_NCCL_COMMUNICATOR_H_
#define LIKENESS_WORKER_DIST_NCCL_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "worker/dist/communicator.h"
#include "worker/dist/environment.h"
#include "worker/dist/mpi_communicator.h"

namespace likeness::dist {

// `mpi` (owned) bootstraps the id and carries the small collectives.
absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    const DistEnvironment& env, std::unique_ptr<Communicator> mpi, const MpiOptions& options);

// Whether this build has NCCL.
bool HaveNccl();

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_NCCL_COMMUNICATOR_H_

// The MPI communicator: CPU tensors, Open MPI underneath (compiled when LIKENESS_HAVE_MPI).
// <mpi.h> stays in the .cc so that callers need no MPI include path.
//
// Deadline protocol (communicator.h's steps 2 and 3, MPI flavour):
//   1. MPI is initialized with MPI_THREAD_SERIALIZED (autograd hooks may start collectives
//      from the backward thread); one mutex serializes every MPI call of the process.
//   2. Collectives run on a duplicate of MPI_COMM_WORLD as non-blocking calls (MPI_Iallreduce,
//      MPI_Ibcast, MPI_Ibarrier, MPI_Iallgather) polled with MPI_Test against the deadline.
//   3. While it polls, a rank answers pings on a second duplicate communicator: a ping asks
//      "which collective are you in", the answer is the sequence number of the collective the
//      rank is waiting in (-1 when it is not waiting in any).
//   4. On timeout a rank pings every peer and waits kDiagnosisGrace for answers. The error
//      names the collective and its sequence number, and each peer that did not answer (dead,
//      or stuck outside any collective) or that waits in a different collective.
//   5. abort_on_error: the message goes to stderr and MPI_Abort(kRequeueExitCode) ends every
//      rank (mpirun then exits with that code).
// float32/float64/int32/int64 reduce natively; bfloat16 and float16 are widened to float32 for
// the reduction (MPI has no such types); kAvg is a sum divided by size().
#ifndef LIKENESS_WORKER_DIST_MPI_COMMUNICATOR_H_
#define LIKENESS_WORKER_DIST_MPI_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "worker/dist/communicator.h"
#include "worker/dist/environment.h"

namespace likeness::dist {

struct MpiOptions {
  // Print the error and MPI_Abort on a timeout or MPI error (jobs); false returns the status
  // and leaves the communicator broken (in-process tests).
  bool abort_on_error = true;
  absl::Duration timeout = kDefaultCollectiveTimeout;
};

// Initializes MPI on first use (it is finalized at exit unless a collective broke). `env` is
// checked against MPI's own rank and size: a mismatch is FAILED_PRECONDITION (a launcher
// that sets the variables of one world and starts another).
absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator(const DistEnvironment& env,
                                                                   const MpiOptions& options);

// Whether this build has MPI.
bool HaveMpi();

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_MPI_COMMUNICATOR_H_

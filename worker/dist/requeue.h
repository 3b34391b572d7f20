// What a data-parallel rank does when the job cannot go on but would succeed if started again
// from its last checkpoint: a peer died or stalled (collective timeout), or the scheduler is
// about to preempt the allocation (Slurm's --signal=B:USR1@120).
//
// Contract with the coordinator and the launchers (launch/train-mpi, launch/slurm/train.sbatch):
//   1. such a failure is an absl::Status carrying the kRequeuePayloadUrl payload (MarkRequeue);
//   2. `likeness train` exits with kRequeueExitCode for it (ExitCodeFor), on every rank, and
//      MPI_Abort uses the same code so mpirun/srun report it;
//   3. the coordinator, and train.sbatch under Slurm (scontrol requeue), treat exactly that
//      code as "requeue from the latest checkpoint"; any other non-zero code is a real failure.
// Torch-free and MPI-free: the CLI and the coordinator may include it.
#ifndef LIKENESS_WORKER_DIST_REQUEUE_H_
#define LIKENESS_WORKER_DIST_REQUEUE_H_

#include "absl/status/status.h"

namespace likeness::dist {

// EX_TEMPFAIL from <sysexits.h>: "a temporary failure; the user is invited to retry". Distinct
// from the CLI's 0/1/2, from 128+signal and from Open MPI's and Slurm's own codes.
inline constexpr int kRequeueExitCode = 75;

// Marks a status as "requeue me" (a payload, so the code and message stay the caller's).
inline constexpr char kRequeuePayloadUrl[] = "likeness.dev/dist/requeue";
absl::Status MarkRequeue(absl::Status status);
bool IsRequeue(const absl::Status& status);
// kRequeueExitCode for a requeue status, else `failure_code` (0 for OK).
int ExitCodeFor(const absl::Status& status, int failure_code);

// The signal a scheduler sends before preemption (Slurm --signal=B:USR1@120, forwarded to the
// ranks by train.sbatch).
inline constexpr int kPreemptSignal = 10;  // SIGUSR1 on Linux (static_assert in requeue.cc)
// Installs a SIGUSR1 handler that only sets a flag (async-signal-safe); the trainer polls
// PreemptRequested() once a step and agrees on it with every rank before it checkpoints.
void InstallPreemptHandler();
bool PreemptRequested();
// Tests: set or clear the flag as the handler would.
void SetPreemptRequestedForTesting(bool requested);

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_REQUEUE_H_

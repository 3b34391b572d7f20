// What the worker agent (agent.h) calls to run one leased job. The protocol (leases,
// heartbeats, retries) stays in the agent; a runner only does the work and reports progress.
// Runners for train/generate/evaluate jobs (in process, or `mpirun -np G` for multi-GPU
// jobs) implement this; tests use a fake one.
#ifndef LIKENESS_WORKER_AGENT_JOB_RUNNER_H_
#define LIKENESS_WORKER_AGENT_JOB_RUNNER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "protos/likeness.pb.h"

namespace likeness::agent {

// Handed to a running job: progress goes out through it, and it says when to stop.
class JobContext {
 public:
  virtual ~JobContext() = default;
  // Sends progress (with the last complete checkpoint, which a requeued attempt resumes from).
  // Returns false when the job must stop: cancelled, or this attempt is no longer the lease.
  virtual bool Report(const v1::JobProgress& progress) = 0;
  // Whether the job must stop now (checked between steps; also set by heartbeats).
  virtual bool StopRequested() const = 0;
};

struct JobOutcome {
  // OK: the job succeeded. Otherwise the message is the error the user sees.
  absl::Status status;
  // For a failure: JOB (bad config or data, never retried) or INFRASTRUCTURE (requeued).
  v1::FailureKind failure_kind = v1::FAILURE_KIND_INFRASTRUCTURE;
  std::vector<v1::Artifact> artifacts;     // paths under the coordinator's artifact root
  std::map<std::string, double> metrics;
  v1::JobProgress progress;                // the last progress, for a failure's requeue
};

class JobRunner {
 public:
  virtual ~JobRunner() = default;
  // Runs the leased job to its end (or until context->StopRequested()). Called on its own
  // thread; several may run at once on a node with several devices.
  virtual JobOutcome Run(const v1::LeaseResponse& lease, JobContext* context) = 0;
};

}  // namespace likeness::agent

#endif  // LIKENESS_WORKER_AGENT_JOB_RUNNER_H_

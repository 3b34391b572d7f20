// The coordinator's state machine: sweeps, jobs, workers and leases, in memory. Pure: time
// comes from a Clock, and every change is also described in a Mutation that the caller
// journals (store.h) before answering. Not thread-safe; Coordinator (coordinator.h) locks.
//
// Lease protocol (worker side in worker/agent/):
//   1. Register(info) -> worker id, heartbeat interval, lease timeout. A worker that registers
//      again under the same name was restarted: its old leases end as infrastructure failures.
//   2. Lease(worker) -> a job that fits (scheduler.h) with attempt = previous + 1, its lease
//      expiring lease_timeout from now. Train jobs of attempt > 1 have train.resume set: the
//      trainer continues from its last complete checkpoint.
//   3. Heartbeat(worker, running attempts), every heartbeat interval: extends the leases it
//      lists; a lease it listed before (or reported on) and no longer lists was lost with its
//      process and ends now (one never listed yet only times out: the heartbeat may predate
//      it). The answer lists the attempts it must stop (cancelled, or no longer its own).
//   4. Report(job, attempt, progress): extends the lease too; answers stop=true for a stale
//      attempt or a cancelled job.
//   5. Complete / Fail(job, attempt): end the attempt. Idempotent on (job, attempt): repeating
//      a call that already took effect answers as the first did; a call for an attempt that is
//      not the current lease is FAILED_PRECONDITION and changes nothing.
//   6. A lease not extended by its deadline ends as an infrastructure failure: the job is
//      requeued (while the sweep's infrastructure budget lasts) and resumes from its last
//      checkpoint. A job failure (bad config or data) is never retried automatically.
//   7. After a coordinator restart (Restore) every lease is re-armed to a full timeout from the
//      restart: the outage is not the workers' fault.
#ifndef LIKENESS_COORDINATOR_COORDINATOR_STATE_H_
#define LIKENESS_COORDINATOR_COORDINATOR_STATE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/clock.h"
#include "coordinator/constants.h"
#include "coordinator/mutation.h"
#include "coordinator/scheduler.h"
#include "protos/likeness.pb.h"

namespace likeness::coordinator {

struct StateOptions {
  std::string artifact_root = "runs/artifacts";
  int64_t lease_timeout_ms = kDefaultLeaseTimeoutMs;
  int64_t heartbeat_interval_ms = kDefaultHeartbeatIntervalMs;
  int64_t lease_retry_after_ms = kDefaultLeaseRetryAfterMs;
};

// What the journal holds; Restore rebuilds the state from it.
struct Snapshot {
  std::vector<v1::Sweep> sweeps;
  std::vector<v1::Job> jobs;
  std::vector<v1::Worker> workers;
};

bool IsTerminal(v1::JobState state);

class CoordinatorState {
 public:
  CoordinatorState(const Clock* clock, StateOptions options);

  // Rebuilds from the journal and re-arms every lease (protocol step 7).
  void Restore(const Snapshot& snapshot, Mutation* mutation);

  // --- Users ---
  absl::StatusOr<v1::SubmitResponse> Submit(const v1::SubmitRequest& request, Mutation* mutation);
  absl::StatusOr<v1::Sweep> GetSweep(const std::string& sweep_id) const;
  std::vector<v1::Sweep> ListSweeps() const;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) const;
  std::vector<v1::Job> ListJobs(const std::string& sweep_id, v1::JobState state) const;
  absl::StatusOr<v1::CancelResponse> Cancel(const v1::CancelRequest& request, Mutation* mutation);
  absl::StatusOr<v1::RetryResponse> Retry(const v1::RetryRequest& request, Mutation* mutation);

  // --- Workers ---
  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request,
                                                Mutation* mutation);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request,
                                                  Mutation* mutation);
  absl::StatusOr<v1::LeaseResponse> Lease(const v1::LeaseRequest& request, Mutation* mutation);
  absl::StatusOr<v1::ReportResponse> Report(const v1::ReportRequest& request, Mutation* mutation);
  absl::Status Complete(const v1::CompleteRequest& request, Mutation* mutation);
  absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& request, Mutation* mutation);

  // --- Time ---
  // Ends every lease past its deadline (protocol step 6); marks silent workers lost.
  void ExpireLeases(Mutation* mutation);
  // The earliest lease deadline, or INT64_MAX: when ExpireLeases next has work.
  int64_t NextLeaseDeadlineMs() const;

  // --- Watch ---
  // Increases on every change; jobs and sweeps carry the version of their last change.
  int64_t version() const { return version_; }
  std::vector<v1::Job> JobsChangedSince(int64_t version, const std::string& sweep_id) const;

  const StateOptions& options() const { return options_; }

 private:
  struct WorkerEntry {
    v1::Worker worker;
    std::set<std::string> jobs;         // leased job ids
    std::set<std::string> undelivered;  // gang leases its Lease call has not returned yet
    // Leases the worker has not yet named in a heartbeat or report: a heartbeat composed
    // before the lease arrived must not end it, so these end only by timing out.
    std::set<std::string> unconfirmed;
    int used_devices = 0;
  };

  absl::StatusOr<WorkerEntry*> FindWorker(const std::string& worker_id);
  absl::StatusOr<v1::Job*> FindLeasedAttempt(const std::string& worker_id,
                                             const v1::JobAttempt& attempt);
  v1::LeaseResponse LeaseResponseFor(const v1::Job& job, const std::string& worker_id) const;

  // Every change of a job's state goes through here: journal row, queue, worker capacity,
  // dependents and the sweep's counts.
  void SetState(v1::Job* job, v1::JobState to, const std::string& reason, Mutation* mutation);
  void Touch(v1::Job* job, Mutation* mutation);
  void TouchWorker(WorkerEntry* entry, Mutation* mutation);
  void ReleaseLeases(v1::Job* job);
  // Ends the current attempt as an infrastructure failure: requeue within budget, else fail.
  void InfrastructureFailure(v1::Job* job, const std::string& reason, Mutation* mutation);
  void OnSucceeded(const v1::Job& job, Mutation* mutation);
  void CancelDependents(const v1::Job& job, Mutation* mutation);
  bool DependenciesSucceeded(const v1::Job& job) const;
  void UpdateSweep(const std::string& sweep_id, Mutation* mutation);
  int MaxInfrastructureRetries(const v1::Job& job) const;

  const Clock* clock_;
  StateOptions options_;
  std::map<std::string, v1::Sweep> sweeps_;
  std::map<std::string, v1::Job> jobs_;
  std::map<std::string, std::vector<std::string>> sweep_jobs_;  // in graph order
  std::map<std::string, std::vector<std::string>> dependents_;
  std::map<std::string, WorkerEntry> workers_;
  std::map<std::string, std::string> request_ids_;  // Submit idempotency key -> sweep id
  std::set<std::string> cancelled_sweeps_;          // by a user, not by a failure
  std::map<std::string, int64_t> progress_journaled_ms_;
  Scheduler scheduler_;
  int64_t next_sweep_ = 1;
  int64_t next_worker_ = 1;
  int64_t next_sequence_ = 1;
  int64_t version_ = 0;
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_COORDINATOR_STATE_H_

// The worker-facing half of CoordinatorState: registration, leases, heartbeats, progress,
// completion and expiry (the protocol is numbered in coordinator_state.h).
#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/coordinator_state.h"

namespace likeness::coordinator {
namespace {

const v1::Lease* LeaseOf(const v1::Job& job, const std::string& worker_id) {
  for (const v1::Lease& lease : job.leases()) {
    if (lease.worker_id() == worker_id) return &lease;
  }
  return nullptr;
}

v1::Lease* MutableLeaseOf(v1::Job* job, const std::string& worker_id) {
  for (v1::Lease& lease : *job->mutable_leases()) {
    if (lease.worker_id() == worker_id) return &lease;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<CoordinatorState::WorkerEntry*> CoordinatorState::FindWorker(
    const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("unknown worker '", worker_id, "': register again"));
  }
  if (it->second.worker.lost()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker '", worker_id, "' missed its heartbeats and its leases ended: register again"));
  }
  return &it->second;
}

absl::StatusOr<v1::Job*> CoordinatorState::FindLeasedAttempt(const std::string& worker_id,
                                                             const v1::JobAttempt& attempt) {
  auto it = jobs_.find(attempt.job_id());
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", attempt.job_id(), "'"));
  v1::Job& job = it->second;
  if (job.state() != v1::JOB_STATE_LEASED || job.attempt() != attempt.attempt() ||
      LeaseOf(job, worker_id) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", job.id(), "' attempt ", attempt.attempt(), " is not leased to worker '",
        worker_id, "' (the job is ", v1::JobState_Name(job.state()), " at attempt ",
        job.attempt(), ")"));
  }
  return &job;
}

v1::LeaseResponse CoordinatorState::LeaseResponseFor(const v1::Job& job,
                                                     const std::string& worker_id) const {
  v1::LeaseResponse response;
  v1::Job& leased = *response.mutable_job() = job;
  // A repeated attempt continues from the last complete checkpoint (worker/train/checkpoint.h).
  if (job.spec().kind() == v1::JOB_KIND_TRAIN && job.attempt() > 1) {
    leased.mutable_spec()->mutable_train()->set_resume(true);
  }
  response.set_world_size(job.leases_size());
  for (const v1::Lease& lease : job.leases()) {
    if (lease.worker_id() == worker_id) response.set_rank(lease.rank());
    auto worker = workers_.find(lease.worker_id());
    response.add_peers(worker == workers_.end() ? "" : worker->second.worker.info().hostname());
  }
  return response;
}

absl::StatusOr<v1::RegisterResponse> CoordinatorState::Register(const v1::RegisterRequest& request,
                                                                Mutation* mutation) {
  v1::WorkerInfo info = request.info();
  if (info.gpu_count() < 0 || info.cpu_slots() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("info: gpu_count ", info.gpu_count(),
                                                   " and cpu_slots ", info.cpu_slots(),
                                                   " must be >= 0"));
  }
  if (info.name().empty()) info.set_name(info.hostname());
  if (info.name().empty()) return absl::InvalidArgumentError("info.hostname: empty");
  // The same name again: that agent restarted, so what it held is gone.
  for (auto& [id, entry] : workers_) {
    if (entry.worker.info().name() != info.name() || entry.worker.lost()) continue;
    entry.worker.set_lost(true);
    TouchWorker(&entry, mutation);
    scheduler_.ReleaseWorker(id);
    for (const std::string& job_id : std::vector<std::string>(entry.jobs.begin(), entry.jobs.end())) {
      InfrastructureFailure(&jobs_.at(job_id),
                            absl::StrCat("worker '", id, "' re-registered (its agent restarted)"),
                            mutation);
    }
  }
  const std::string id = absl::StrCat(info.name(), "#", next_worker_++);
  WorkerEntry& entry = workers_[id];
  entry.worker.set_id(id);
  *entry.worker.mutable_info() = info;
  entry.worker.set_registered_unix_ms(clock_->NowMs());
  entry.worker.set_last_heartbeat_unix_ms(clock_->NowMs());
  TouchWorker(&entry, mutation);
  v1::RegisterResponse response;
  response.set_worker_id(id);
  response.set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
  response.set_lease_timeout_ms(options_.lease_timeout_ms);
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> CoordinatorState::Heartbeat(
    const v1::HeartbeatRequest& request, Mutation* mutation) {
  LIKENESS_ASSIGN_OR_RETURN(WorkerEntry * entry, FindWorker(request.worker_id()));
  const int64_t now = clock_->NowMs();
  // Heartbeat times are not journaled: a restart re-arms them (protocol step 7).
  entry->worker.set_last_heartbeat_unix_ms(now);
  std::map<std::string, int32_t> running;
  for (const v1::JobAttempt& attempt : request.running()) {
    running[attempt.job_id()] = attempt.attempt();
  }
  for (const std::string& job_id : std::vector<std::string>(entry->jobs.begin(), entry->jobs.end())) {
    v1::Job& job = jobs_.at(job_id);
    auto listed = running.find(job_id);
    if (listed != running.end() && listed->second == job.attempt()) {
      MutableLeaseOf(&job, request.worker_id())->set_expires_unix_ms(now + options_.lease_timeout_ms);
      entry->undelivered.erase(job_id);
      entry->unconfirmed.erase(job_id);
    } else if (entry->unconfirmed.count(job_id) == 0) {
      InfrastructureFailure(&job,
                            absl::StrCat("worker '", request.worker_id(), "' no longer runs attempt ",
                                         job.attempt()),
                            mutation);
    }
  }
  v1::HeartbeatResponse response;
  for (const v1::JobAttempt& attempt : request.running()) {
    auto it = jobs_.find(attempt.job_id());
    const bool current = it != jobs_.end() && it->second.state() == v1::JOB_STATE_LEASED &&
                         it->second.attempt() == attempt.attempt() &&
                         LeaseOf(it->second, request.worker_id()) != nullptr;
    if (!current) *response.add_stop() = attempt;
  }
  return response;
}

absl::StatusOr<v1::LeaseResponse> CoordinatorState::Lease(const v1::LeaseRequest& request,
                                                          Mutation* mutation) {
  LIKENESS_ASSIGN_OR_RETURN(WorkerEntry * entry, FindWorker(request.worker_id()));
  entry->worker.set_last_heartbeat_unix_ms(clock_->NowMs());  // asking for work is a sign of life
  // A gang lease formed by another member's call is handed over first.
  if (!entry->undelivered.empty()) {
    const std::string job_id = *entry->undelivered.begin();
    entry->undelivered.erase(entry->undelivered.begin());
    return LeaseResponseFor(jobs_.at(job_id), request.worker_id());
  }
  WorkerView view{request.worker_id(), entry->worker.info(),
                  TotalDevices(entry->worker.info()) - entry->used_devices};
  std::optional<Assignment> assignment = scheduler_.Pick(
      view, [this](const std::string& id) -> const v1::ResourceRequest& {
        return jobs_.at(id).spec().resources();
      });
  if (!assignment) {
    v1::LeaseResponse response;
    response.set_retry_after_ms(options_.lease_retry_after_ms);
    return response;
  }
  v1::Job& job = jobs_.at(assignment->job_id);
  job.set_attempt(job.attempt() + 1);
  const int64_t expires = clock_->NowMs() + options_.lease_timeout_ms;
  for (size_t rank = 0; rank < assignment->workers.size(); ++rank) {
    const std::string& worker_id = assignment->workers[rank];
    v1::Lease& lease = *job.add_leases();
    lease.set_worker_id(worker_id);
    lease.set_rank(static_cast<int32_t>(rank));
    lease.set_expires_unix_ms(expires);
    WorkerEntry& member = workers_.at(worker_id);
    member.jobs.insert(job.id());
    member.unconfirmed.insert(job.id());
    member.used_devices += DevicesNeeded(job.spec().resources(), member.worker.info());
    if (worker_id != request.worker_id()) member.undelivered.insert(job.id());
  }
  job.clear_error();
  SetState(&job, v1::JOB_STATE_LEASED, absl::StrCat("leased to ", request.worker_id()), mutation);
  return LeaseResponseFor(job, request.worker_id());
}

absl::StatusOr<v1::ReportResponse> CoordinatorState::Report(const v1::ReportRequest& request,
                                                            Mutation* mutation) {
  v1::ReportResponse response;
  absl::StatusOr<v1::Job*> found = FindLeasedAttempt(request.worker_id(), request.attempt());
  if (absl::IsFailedPrecondition(found.status())) {
    response.set_stop(true);  // cancelled, or an attempt that is no longer the lease
    return response;
  }
  LIKENESS_RETURN_IF_ERROR(found.status());
  v1::Job& job = **found;
  const int64_t now = clock_->NowMs();
  MutableLeaseOf(&job, request.worker_id())->set_expires_unix_ms(now + options_.lease_timeout_ms);
  WorkerEntry& entry = workers_.at(request.worker_id());
  entry.worker.set_last_heartbeat_unix_ms(now);
  entry.unconfirmed.erase(job.id());
  const int64_t checkpoint =
      std::max(job.progress().last_checkpoint_step(), request.progress().last_checkpoint_step());
  const bool new_checkpoint = checkpoint != job.progress().last_checkpoint_step();
  *job.mutable_progress() = request.progress();
  job.mutable_progress()->set_last_checkpoint_step(checkpoint);
  job.mutable_progress()->set_updated_unix_ms(now);
  int64_t& journaled = progress_journaled_ms_[job.id()];
  const bool journal = new_checkpoint || now - journaled >= kProgressJournalIntervalMs;
  if (journal) journaled = now;
  Touch(&job, journal ? mutation : nullptr);
  return response;
}

absl::Status CoordinatorState::Complete(const v1::CompleteRequest& request, Mutation* mutation) {
  auto it = jobs_.find(request.attempt().job_id());
  if (it != jobs_.end() && it->second.state() == v1::JOB_STATE_SUCCEEDED &&
      it->second.attempt() == request.attempt().attempt()) {
    return absl::OkStatus();  // a repeated Complete (its answer was lost)
  }
  LIKENESS_ASSIGN_OR_RETURN(v1::Job * job, FindLeasedAttempt(request.worker_id(), request.attempt()));
  *job->mutable_artifacts() = request.artifacts();
  *job->mutable_metrics() = request.metrics();
  job->clear_error();
  SetState(job, v1::JOB_STATE_SUCCEEDED, absl::StrCat("completed by ", request.worker_id()),
           mutation);
  return absl::OkStatus();
}

absl::StatusOr<v1::FailResponse> CoordinatorState::Fail(const v1::FailRequest& request,
                                                        Mutation* mutation) {
  v1::FailResponse response;
  auto it = jobs_.find(request.attempt().job_id());
  if (it != jobs_.end() && it->second.attempt() == request.attempt().attempt() &&
      it->second.state() != v1::JOB_STATE_LEASED) {
    // This attempt already ended (a repeated Fail, or it expired first): answer as before.
    response.set_will_retry(it->second.state() == v1::JOB_STATE_QUEUED);
    return response;
  }
  LIKENESS_ASSIGN_OR_RETURN(v1::Job * job, FindLeasedAttempt(request.worker_id(), request.attempt()));
  const int64_t checkpoint = std::max(job->progress().last_checkpoint_step(),
                                      request.progress().last_checkpoint_step());
  job->mutable_progress()->set_last_checkpoint_step(checkpoint);
  if (request.kind() == v1::FAILURE_KIND_JOB) {
    job->set_job_failures(job->job_failures() + 1);
    SetState(job, v1::JOB_STATE_FAILED, absl::StrCat("job failure: ", request.error()), mutation);
  } else {
    InfrastructureFailure(
        job, absl::StrCat("infrastructure failure on ", request.worker_id(), ": ", request.error()),
        mutation);
  }
  response.set_will_retry(job->state() == v1::JOB_STATE_QUEUED);
  return response;
}

void CoordinatorState::ExpireLeases(Mutation* mutation) {
  const int64_t now = clock_->NowMs();
  std::vector<std::pair<std::string, std::string>> expired;  // (job, worker)
  for (auto& [id, entry] : workers_) {
    if (entry.worker.lost()) continue;
    if (now - entry.worker.last_heartbeat_unix_ms() > options_.lease_timeout_ms) {
      entry.worker.set_lost(true);
      TouchWorker(&entry, mutation);
      scheduler_.ReleaseWorker(id);
    }
    for (const std::string& job_id : entry.jobs) {
      const v1::Lease* lease = LeaseOf(jobs_.at(job_id), id);
      if (entry.worker.lost() || (lease != nullptr && lease->expires_unix_ms() < now)) {
        expired.emplace_back(job_id, id);
      }
    }
  }
  for (const auto& [job_id, worker_id] : expired) {
    v1::Job& job = jobs_.at(job_id);
    if (job.state() != v1::JOB_STATE_LEASED) continue;  // a gang already handled
    InfrastructureFailure(&job,
                          absl::StrCat("the lease of attempt ", job.attempt(), " on worker '",
                                       worker_id, "' expired"),
                          mutation);
  }
}

int64_t CoordinatorState::NextLeaseDeadlineMs() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (const auto& [id, entry] : workers_) {
    for (const std::string& job_id : entry.jobs) {
      const v1::Lease* lease = LeaseOf(jobs_.at(job_id), id);
      if (lease != nullptr) next = std::min(next, lease->expires_unix_ms());
    }
  }
  return next;
}

}  // namespace likeness::coordinator

// Sweeps, job transitions and recovery. The worker-facing calls are in
// coordinator_state_workers.cc.
#include "coordinator/coordinator_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/job_graph.h"
#include "coordinator/sweep_expansion.h"

namespace likeness::coordinator {
namespace {

// Sweep ids: the name's safe characters and a number ("dog-lora-3"), so paths stay readable.
constexpr size_t kMaxSweepIdNameLength = 40;

std::string SafeName(const std::string& name) {
  std::string safe;
  for (char c : name) {
    if (safe.size() >= kMaxSweepIdNameLength) break;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    safe += ok ? c : '_';
  }
  return safe.empty() ? "sweep" : safe;
}

}  // namespace

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

CoordinatorState::CoordinatorState(const Clock* clock, StateOptions options)
    : clock_(clock), options_(std::move(options)) {}

void CoordinatorState::Touch(v1::Job* job, Mutation* mutation) {
  job->set_version(++version_);
  job->set_updated_unix_ms(clock_->NowMs());
  if (mutation != nullptr) mutation->jobs[job->id()] = *job;
}

void CoordinatorState::TouchWorker(WorkerEntry* entry, Mutation* mutation) {
  mutation->workers[entry->worker.id()] = entry->worker;
}

void CoordinatorState::ReleaseLeases(v1::Job* job) {
  for (const v1::Lease& lease : job->leases()) {
    auto it = workers_.find(lease.worker_id());
    if (it == workers_.end()) continue;
    WorkerEntry& entry = it->second;
    entry.jobs.erase(job->id());
    entry.undelivered.erase(job->id());
    entry.unconfirmed.erase(job->id());
    entry.used_devices -= DevicesNeeded(job->spec().resources(), entry.worker.info());
  }
  job->clear_leases();
}

void CoordinatorState::SetState(v1::Job* job, v1::JobState to, const std::string& reason,
                                Mutation* mutation) {
  const v1::JobState from = job->state();
  const std::string worker = job->leases_size() > 0 ? job->leases(0).worker_id() : "";
  if (from == v1::JOB_STATE_QUEUED) scheduler_.Remove(job->id());
  if (from == v1::JOB_STATE_LEASED && to != v1::JOB_STATE_LEASED) ReleaseLeases(job);
  job->set_state(to);
  if (to == v1::JOB_STATE_QUEUED) scheduler_.Enqueue(*job);
  if (to == v1::JOB_STATE_FAILED || to == v1::JOB_STATE_CANCELLED) job->set_error(reason);
  mutation->transitions.push_back(
      Transition{job->id(), job->attempt(), from, to, worker, reason, clock_->NowMs()});
  Touch(job, mutation);
  auto sweep = sweeps_.find(job->sweep_id());
  if (sweep != sweeps_.end()) {
    auto& counts = *sweep->second.mutable_job_counts();
    if (from != v1::JOB_STATE_UNSPECIFIED && --counts[v1::JobState_Name(from)] <= 0) {
      counts.erase(v1::JobState_Name(from));
    }
    ++counts[v1::JobState_Name(to)];
  }
  if (to == v1::JOB_STATE_SUCCEEDED) OnSucceeded(*job, mutation);
  if (to == v1::JOB_STATE_FAILED || to == v1::JOB_STATE_CANCELLED) {
    CancelDependents(*job, mutation);
  }
  UpdateSweep(job->sweep_id(), mutation);
}

bool CoordinatorState::DependenciesSucceeded(const v1::Job& job) const {
  for (const std::string& dependency : job.spec().depends_on()) {
    auto it = jobs_.find(dependency);
    if (it == jobs_.end() || it->second.state() != v1::JOB_STATE_SUCCEEDED) return false;
  }
  return true;
}

void CoordinatorState::OnSucceeded(const v1::Job& job, Mutation* mutation) {
  for (const std::string& id : dependents_[job.id()]) {
    v1::Job& dependent = jobs_.at(id);
    if (dependent.state() == v1::JOB_STATE_PENDING && DependenciesSucceeded(dependent)) {
      SetState(&dependent, v1::JOB_STATE_QUEUED, absl::StrCat(job.id(), " succeeded"), mutation);
    }
  }
}

void CoordinatorState::CancelDependents(const v1::Job& job, Mutation* mutation) {
  for (const std::string& id : dependents_[job.id()]) {
    v1::Job& dependent = jobs_.at(id);
    if (IsTerminal(dependent.state())) continue;
    SetState(&dependent, v1::JOB_STATE_CANCELLED,
             absl::StrCat("dependency ", job.id(), " ",
                          job.state() == v1::JOB_STATE_FAILED ? "failed" : "was cancelled"),
             mutation);
  }
}

void CoordinatorState::UpdateSweep(const std::string& sweep_id, Mutation* mutation) {
  auto it = sweeps_.find(sweep_id);
  if (it == sweeps_.end()) return;
  v1::Sweep& sweep = it->second;
  const auto& counts = sweep.job_counts();
  auto count = [&counts](v1::JobState state) {
    auto c = counts.find(v1::JobState_Name(state));
    return c == counts.end() ? 0 : c->second;
  };
  const int active = count(v1::JOB_STATE_PENDING) + count(v1::JOB_STATE_QUEUED) +
                     count(v1::JOB_STATE_LEASED);
  v1::SweepState state = v1::SWEEP_STATE_RUNNING;
  if (active == 0) {
    if (cancelled_sweeps_.count(sweep_id) > 0) {
      state = v1::SWEEP_STATE_CANCELLED;
    } else if (count(v1::JOB_STATE_FAILED) + count(v1::JOB_STATE_CANCELLED) > 0) {
      state = v1::SWEEP_STATE_FAILED;
    } else {
      state = v1::SWEEP_STATE_SUCCEEDED;
    }
  }
  sweep.set_state(state);
  sweep.set_updated_unix_ms(clock_->NowMs());
  mutation->sweeps[sweep_id] = sweep;
}

int CoordinatorState::MaxInfrastructureRetries(const v1::Job& job) const {
  auto it = sweeps_.find(job.sweep_id());
  const int configured =
      it == sweeps_.end() ? 0 : it->second.spec().retry().max_infrastructure_retries();
  return configured > 0 ? configured : kDefaultMaxInfrastructureRetries;
}

void CoordinatorState::InfrastructureFailure(v1::Job* job, const std::string& reason,
                                             Mutation* mutation) {
  job->set_infrastructure_failures(job->infrastructure_failures() + 1);
  const int budget = MaxInfrastructureRetries(*job);
  if (job->infrastructure_failures() > budget) {
    SetState(job, v1::JOB_STATE_FAILED,
             absl::StrCat(reason, " (", job->infrastructure_failures(),
                          " infrastructure failures; the budget is ", budget, ")"),
             mutation);
    return;
  }
  job->set_error(reason);  // kept for the user while it waits; the next success clears it
  SetState(job, v1::JOB_STATE_QUEUED, reason, mutation);
}

// --- Users ---

absl::StatusOr<v1::SubmitResponse> CoordinatorState::Submit(const v1::SubmitRequest& request,
                                                            Mutation* mutation) {
  if (!request.request_id().empty()) {
    auto it = request_ids_.find(request.request_id());
    if (it != request_ids_.end()) {
      v1::SubmitResponse response;
      *response.mutable_sweep() = sweeps_.at(it->second);
      response.set_job_count(static_cast<int>(sweep_jobs_[it->second].size()));
      return response;
    }
  }
  const v1::SweepSpec spec = NormalizeSweep(request.spec());
  LIKENESS_ASSIGN_OR_RETURN(std::vector<SweepPoint> points, ExpandSweep(spec));
  const std::string sweep_id = absl::StrCat(SafeName(spec.name()), "-", next_sweep_++);
  std::vector<v1::Job> jobs = BuildJobGraph(sweep_id, spec, points, options_.artifact_root);

  const int64_t now = clock_->NowMs();
  v1::Sweep& sweep = sweeps_[sweep_id];
  sweep.set_id(sweep_id);
  *sweep.mutable_spec() = spec;
  sweep.set_state(v1::SWEEP_STATE_RUNNING);
  sweep.set_created_unix_ms(now);
  sweep.set_request_id(request.request_id());
  sweep.set_sequence(next_sweep_ - 1);
  if (!request.request_id().empty()) request_ids_[request.request_id()] = sweep_id;

  for (v1::Job& job : jobs) {
    job.set_sequence(next_sequence_++);
    job.set_created_unix_ms(now);
    const v1::JobState initial = job.state();
    job.set_state(v1::JOB_STATE_UNSPECIFIED);
    sweep_jobs_[sweep_id].push_back(job.id());
    for (const std::string& dependency : job.spec().depends_on()) {
      dependents_[dependency].push_back(job.id());
    }
    v1::Job& stored = jobs_[job.id()] = std::move(job);
    SetState(&stored, initial, "submitted", mutation);
  }
  v1::SubmitResponse response;
  *response.mutable_sweep() = sweep;
  response.set_job_count(static_cast<int>(jobs.size()));
  return response;
}

absl::StatusOr<v1::Sweep> CoordinatorState::GetSweep(const std::string& sweep_id) const {
  auto it = sweeps_.find(sweep_id);
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("no sweep '", sweep_id, "'"));
  return it->second;
}

std::vector<v1::Sweep> CoordinatorState::ListSweeps() const {
  std::vector<v1::Sweep> sweeps;
  for (const auto& [id, sweep] : sweeps_) sweeps.push_back(sweep);
  std::sort(sweeps.begin(), sweeps.end(), [](const v1::Sweep& a, const v1::Sweep& b) {
    return a.sequence() < b.sequence();
  });
  return sweeps;
}

absl::StatusOr<v1::Job> CoordinatorState::GetJob(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return it->second;
}

std::vector<v1::Job> CoordinatorState::ListJobs(const std::string& sweep_id,
                                                v1::JobState state) const {
  std::vector<v1::Job> jobs;
  auto add = [&](const v1::Job& job) {
    if (state == v1::JOB_STATE_UNSPECIFIED || job.state() == state) jobs.push_back(job);
  };
  if (!sweep_id.empty()) {
    auto it = sweep_jobs_.find(sweep_id);
    if (it != sweep_jobs_.end()) {
      for (const std::string& id : it->second) add(jobs_.at(id));
    }
    return jobs;
  }
  for (const auto& [id, job] : jobs_) add(job);
  std::sort(jobs.begin(), jobs.end(),
            [](const v1::Job& a, const v1::Job& b) { return a.sequence() < b.sequence(); });
  return jobs;
}

std::vector<v1::Job> CoordinatorState::JobsChangedSince(int64_t version,
                                                        const std::string& sweep_id) const {
  std::vector<v1::Job> changed;
  for (const v1::Job& job : ListJobs(sweep_id, v1::JOB_STATE_UNSPECIFIED)) {
    if (job.version() > version) changed.push_back(job);
  }
  std::sort(changed.begin(), changed.end(),
            [](const v1::Job& a, const v1::Job& b) { return a.version() < b.version(); });
  return changed;
}

absl::StatusOr<v1::CancelResponse> CoordinatorState::Cancel(const v1::CancelRequest& request,
                                                            Mutation* mutation) {
  const std::string reason = request.reason().empty() ? "cancelled by a user" : request.reason();
  std::vector<std::string> ids;
  if (!request.job_id().empty()) {
    if (jobs_.count(request.job_id()) == 0) {
      return absl::NotFoundError(absl::StrCat("no job '", request.job_id(), "'"));
    }
    ids.push_back(request.job_id());
  } else {
    if (sweeps_.count(request.sweep_id()) == 0) {
      return absl::NotFoundError(absl::StrCat("no sweep '", request.sweep_id(), "'"));
    }
    cancelled_sweeps_.insert(request.sweep_id());
    ids = sweep_jobs_[request.sweep_id()];
  }
  const size_t first_row = mutation->transitions.size();
  for (const std::string& id : ids) {
    v1::Job& job = jobs_.at(id);
    if (!IsTerminal(job.state())) SetState(&job, v1::JOB_STATE_CANCELLED, reason, mutation);
  }
  // Dependents cancelled along the way count too.
  v1::CancelResponse response;
  for (size_t i = first_row; i < mutation->transitions.size(); ++i) {
    if (mutation->transitions[i].to == v1::JOB_STATE_CANCELLED) {
      response.set_cancelled(response.cancelled() + 1);
    }
  }
  if (!request.sweep_id().empty()) UpdateSweep(request.sweep_id(), mutation);
  return response;
}

absl::StatusOr<v1::RetryResponse> CoordinatorState::Retry(const v1::RetryRequest& request,
                                                          Mutation* mutation) {
  std::vector<std::string> ids;
  if (!request.job_id().empty()) {
    auto it = jobs_.find(request.job_id());
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", request.job_id(), "'"));
    const v1::JobState state = it->second.state();
    if (state != v1::JOB_STATE_FAILED && state != v1::JOB_STATE_CANCELLED) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", request.job_id(), "' is ", v1::JobState_Name(state),
                       "; only failed or cancelled jobs are retried"));
    }
    // The job, then everything downstream that its failure cancelled (graph order).
    std::set<std::string> wanted = {request.job_id()};
    for (const std::string& id : sweep_jobs_[it->second.sweep_id()]) {
      for (const std::string& dependency : jobs_.at(id).spec().depends_on()) {
        if (wanted.count(dependency) > 0 && jobs_.at(id).state() == v1::JOB_STATE_CANCELLED) {
          wanted.insert(id);
        }
      }
      if (wanted.count(id) > 0) ids.push_back(id);
    }
  } else {
    if (sweeps_.count(request.sweep_id()) == 0) {
      return absl::NotFoundError(absl::StrCat("no sweep '", request.sweep_id(), "'"));
    }
    ids = sweep_jobs_[request.sweep_id()];
  }
  v1::RetryResponse response;
  for (const std::string& id : ids) {
    v1::Job& job = jobs_.at(id);
    if (job.state() != v1::JOB_STATE_FAILED && job.state() != v1::JOB_STATE_CANCELLED) continue;
    cancelled_sweeps_.erase(job.sweep_id());
    job.set_infrastructure_failures(0);
    job.clear_error();
    SetState(&job, DependenciesSucceeded(job) ? v1::JOB_STATE_QUEUED : v1::JOB_STATE_PENDING,
             "retried by a user", mutation);
    response.set_requeued(response.requeued() + 1);
  }
  return response;
}

// --- Recovery ---

void CoordinatorState::Restore(const Snapshot& snapshot, Mutation* mutation) {
  const int64_t now = clock_->NowMs();
  for (const v1::Sweep& sweep : snapshot.sweeps) {
    v1::Sweep& stored = sweeps_[sweep.id()] = sweep;
    stored.clear_job_counts();
    if (!sweep.request_id().empty()) request_ids_[sweep.request_id()] = sweep.id();
    if (sweep.state() == v1::SWEEP_STATE_CANCELLED) cancelled_sweeps_.insert(sweep.id());
    next_sweep_ = std::max(next_sweep_, sweep.sequence() + 1);
  }
  for (const v1::Worker& worker : snapshot.workers) {
    WorkerEntry& entry = workers_[worker.id()];
    entry.worker = worker;
    // A full heartbeat window from the restart (protocol step 7).
    entry.worker.set_last_heartbeat_unix_ms(now);
    ++next_worker_;
  }
  std::vector<const v1::Job*> ordered;
  for (const v1::Job& job : snapshot.jobs) ordered.push_back(&job);
  std::sort(ordered.begin(), ordered.end(),
            [](const v1::Job* a, const v1::Job* b) { return a->sequence() < b->sequence(); });
  std::vector<std::string> orphaned;  // leased to a worker the journal does not know
  for (const v1::Job* saved : ordered) {
    v1::Job& job = jobs_[saved->id()] = *saved;
    sweep_jobs_[job.sweep_id()].push_back(job.id());
    for (const std::string& dependency : job.spec().depends_on()) {
      dependents_[dependency].push_back(job.id());
    }
    next_sequence_ = std::max(next_sequence_, job.sequence() + 1);
    version_ = std::max(version_, job.version());
    (*sweeps_[job.sweep_id()].mutable_job_counts())[v1::JobState_Name(job.state())]++;
    if (job.state() == v1::JOB_STATE_QUEUED) scheduler_.Enqueue(job);
    if (job.state() != v1::JOB_STATE_LEASED) continue;
    for (v1::Lease& lease : *job.mutable_leases()) {
      lease.set_expires_unix_ms(now + options_.lease_timeout_ms);
      auto worker = workers_.find(lease.worker_id());
      if (worker == workers_.end() || worker->second.worker.lost()) {
        orphaned.push_back(job.id());
        continue;
      }
      worker->second.jobs.insert(job.id());
      // Whether the worker still runs it is learned from its next heartbeat or its timeout.
      worker->second.unconfirmed.insert(job.id());
      worker->second.used_devices +=
          DevicesNeeded(job.spec().resources(), worker->second.worker.info());
    }
  }
  for (const std::string& id : orphaned) {
    v1::Job& job = jobs_.at(id);
    if (job.state() == v1::JOB_STATE_LEASED) {
      InfrastructureFailure(&job, "its worker is unknown after a coordinator restart", mutation);
    }
  }
}

}  // namespace likeness::coordinator

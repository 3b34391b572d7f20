#include "worker/agent/agent.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/client.h"
#include "coordinator/grpc_status.h"

namespace likeness::agent {

struct Agent::Running {
  v1::LeaseResponse lease;
  v1::JobAttempt attempt;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::thread thread;
};

class Agent::Context final : public JobContext {
 public:
  Context(Agent* agent, Running* job, std::string worker_id)
      : agent_(agent), job_(job), worker_id_(std::move(worker_id)) {}

  bool Report(const v1::JobProgress& progress) override {
    if (StopRequested()) return false;
    v1::ReportRequest request;
    request.set_worker_id(worker_id_);
    *request.mutable_attempt() = job_->attempt;
    *request.mutable_progress() = progress;
    v1::ReportResponse response;
    grpc::Status status =
        agent_->Call([&](grpc::ClientContext* c) { return agent_->stub_->Report(c, request, &response); });
    // A refused report (stale attempt, unknown job) means the work is no longer wanted.
    if (!status.ok() || response.stop()) job_->stop = true;
    return !StopRequested();
  }

  bool StopRequested() const override { return job_->stop || agent_->killed_; }

 private:
  Agent* agent_;
  Running* job_;
  std::string worker_id_;
};

Agent::Agent(std::shared_ptr<grpc::Channel> channel, AgentOptions options, JobRunner* runner)
    : stub_(v1::WorkerService::NewStub(channel)), options_(std::move(options)), runner_(runner) {}

Agent::~Agent() {
  Stop();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  JoinFinished(/*all=*/true);
}

grpc::Status Agent::Call(const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  for (;;) {
    if (killed_) return grpc::Status(grpc::StatusCode::CANCELLED, "the agent was killed");
    auto context = coordinator::MakeContext(options_.token, options_.call_timeout);
    context->set_wait_for_ready(true);
    grpc::Status status = call(context.get());
    const bool transient = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!transient) return status;
    std::this_thread::sleep_for(options_.retry_pause);
  }
}

absl::Status Agent::Register() {
  v1::RegisterRequest request;
  *request.mutable_info() = options_.info;
  v1::RegisterResponse response;
  grpc::Status status = Call([&](grpc::ClientContext* c) { return stub_->Register(c, request, &response); });
  if (!status.ok()) return coordinator::FromGrpc(status);
  std::lock_guard<std::mutex> lock(mutex_);
  worker_id_ = response.worker_id();
  heartbeat_interval_ = std::chrono::milliseconds(response.heartbeat_interval_ms());
  return absl::OkStatus();
}

void Agent::StopAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, job] : running_) job->stop = true;
}

void Agent::JoinFinished(bool all) {
  std::vector<std::shared_ptr<Running>> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = running_.begin(); it != running_.end();) {
      if (all || it->second->done) {
        finished.push_back(it->second);
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& job : finished) {
    if (job->thread.joinable()) job->thread.join();
  }
}

void Agent::HeartbeatLoop() {
  for (;;) {
    v1::HeartbeatRequest request;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, heartbeat_interval_, [this] { return stopping_.load(); });
      if (stopping_) return;
      request.set_worker_id(worker_id_);
      for (const auto& [id, job] : running_) {
        if (!job->done) *request.add_running() = job->attempt;
      }
    }
    v1::HeartbeatResponse response;
    grpc::Status status =
        Call([&](grpc::ClientContext* c) { return stub_->Heartbeat(c, request, &response); });
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      StopAll();  // declared lost: the Run loop registers again
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    for (const v1::JobAttempt& stop : response.stop()) {
      auto it = running_.find(stop.job_id());
      if (it != running_.end() && it->second->attempt.attempt() == stop.attempt()) {
        it->second->stop = true;
      }
    }
  }
}

void Agent::RunJob(std::shared_ptr<Running> job) {
  std::string worker_id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    worker_id = worker_id_;
  }
  Context context(this, job.get(), worker_id);
  JobOutcome outcome = runner_->Run(job->lease, &context);
  if (!killed_) {
    if (outcome.status.ok() && !context.StopRequested()) {
      v1::CompleteRequest request;
      request.set_worker_id(worker_id);
      *request.mutable_attempt() = job->attempt;
      for (const v1::Artifact& artifact : outcome.artifacts) *request.add_artifacts() = artifact;
      for (const auto& [name, value] : outcome.metrics) (*request.mutable_metrics())[name] = value;
      v1::CompleteResponse response;
      if (Call([&](grpc::ClientContext* c) { return stub_->Complete(c, request, &response); }).ok()) {
        ++completed_;
      }
    } else {
      // Stopped jobs are reported too, so a shutdown requeues them now rather than at expiry.
      v1::FailRequest request;
      request.set_worker_id(worker_id);
      *request.mutable_attempt() = job->attempt;
      request.set_kind(outcome.status.ok() ? v1::FAILURE_KIND_INFRASTRUCTURE : outcome.failure_kind);
      request.set_error(outcome.status.ok() ? "stopped" : std::string(outcome.status.message()));
      *request.mutable_progress() = outcome.progress;
      v1::FailResponse response;
      Call([&](grpc::ClientContext* c) { return stub_->Fail(c, request, &response); });
    }
  }
  job->done = true;
  wake_.notify_all();
}

absl::Status Agent::Run() {
  if (absl::Status status = Register(); !status.ok()) return status;
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  absl::Status result = absl::OkStatus();
  while (!stopping_ && !killed_) {
    JoinFinished(/*all=*/false);
    v1::LeaseRequest request;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      request.set_worker_id(worker_id_);
    }
    v1::LeaseResponse lease;
    grpc::Status status = Call([&](grpc::ClientContext* c) { return stub_->Lease(c, request, &lease); });
    if (killed_ || stopping_) break;
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      StopAll();
      JoinFinished(/*all=*/true);
      if (absl::Status registered = Register(); !registered.ok()) {
        result = registered;
        break;
      }
      continue;
    }
    if (!status.ok()) {
      result = coordinator::FromGrpc(status);  // UNAUTHENTICATED and the like: a setup error
      break;
    }
    if (!lease.has_job()) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(lease.retry_after_ms()),
                     [this] { return stopping_.load(); });
      continue;
    }
    auto job = std::make_shared<Running>();
    job->lease = lease;
    job->attempt.set_job_id(lease.job().id());
    job->attempt.set_attempt(lease.job().attempt());
    std::lock_guard<std::mutex> lock(mutex_);
    running_[job->attempt.job_id()] = job;
    job->thread = std::thread([this, job] { RunJob(job); });
  }
  if (!killed_) StopAll();
  JoinFinished(/*all=*/true);
  stopping_ = true;
  wake_.notify_all();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  return result;
}

void Agent::Stop() {
  stopping_ = true;
  wake_.notify_all();
}

void Agent::Kill() {
  killed_ = true;
  Stop();
}

}  // namespace likeness::agent

// A CoordinatorState on a FakeClock with helpers that act as workers and users.
#ifndef LIKENESS_TESTS_COORDINATOR_STATE_FIXTURE_H_
#define LIKENESS_TESTS_COORDINATOR_STATE_FIXTURE_H_

#include <string>

#include "coordinator/clock.h"
#include "coordinator/coordinator_state.h"
#include "gtest/gtest.h"
#include "tests/coordinator/sweep_fixtures.h"

namespace likeness::coordinator::testing {

inline constexpr int64_t kTestLeaseTimeoutMs = 1'000;

class StateTest : public ::testing::Test {
 protected:
  static StateOptions Options() {
    StateOptions options;
    options.artifact_root = "/art";
    options.lease_timeout_ms = kTestLeaseTimeoutMs;
    options.heartbeat_interval_ms = kTestLeaseTimeoutMs / 3;
    return options;
  }

  std::string Submit(const std::string& yaml, const std::string& request_id = "") {
    v1::SubmitRequest request;
    *request.mutable_spec() = ParseSweep(yaml);
    request.set_request_id(request_id);
    auto response = state_.Submit(request, &mutation_);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->sweep().id() : "";
  }

  std::string Register(const std::string& name, int gpus, const std::string& model = "H100") {
    v1::RegisterRequest request;
    request.mutable_info()->set_hostname(name);
    request.mutable_info()->set_gpu_count(gpus);
    request.mutable_info()->set_gpu_model(model);
    request.mutable_info()->set_gpu_memory_bytes(int64_t{80} << 30);
    auto response = state_.Register(request, &mutation_);
    EXPECT_TRUE(response.ok()) << response.status();
    return response->worker_id();
  }

  v1::LeaseResponse Lease(const std::string& worker) {
    v1::LeaseRequest request;
    request.set_worker_id(worker);
    auto response = state_.Lease(request, &mutation_);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::LeaseResponse();
  }

  static v1::JobAttempt AttemptOf(const v1::Job& job) {
    v1::JobAttempt attempt;
    attempt.set_job_id(job.id());
    attempt.set_attempt(job.attempt());
    return attempt;
  }

  absl::Status Complete(const std::string& worker, const v1::Job& job, double metric = 0.5) {
    v1::CompleteRequest request;
    request.set_worker_id(worker);
    *request.mutable_attempt() = AttemptOf(job);
    (*request.mutable_metrics())["clip_i"] = metric;
    return state_.Complete(request, &mutation_);
  }

  absl::StatusOr<v1::FailResponse> Fail(const std::string& worker, const v1::Job& job,
                                        v1::FailureKind kind) {
    v1::FailRequest request;
    request.set_worker_id(worker);
    *request.mutable_attempt() = AttemptOf(job);
    request.set_kind(kind);
    request.set_error("boom");
    return state_.Fail(request, &mutation_);
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const std::string& worker,
                                                  const std::vector<v1::Job>& running) {
    v1::HeartbeatRequest request;
    request.set_worker_id(worker);
    for (const v1::Job& job : running) *request.add_running() = AttemptOf(job);
    return state_.Heartbeat(request, &mutation_);
  }

  // Leases and completes jobs with `worker` until nothing is queued; returns how many ran.
  int RunAll(const std::string& worker) {
    int ran = 0;
    for (;;) {
      v1::LeaseResponse lease = Lease(worker);
      if (!lease.has_job()) return ran;
      EXPECT_TRUE(Complete(worker, lease.job()).ok());
      ++ran;
    }
  }

  v1::JobState StateOf(const std::string& job_id) { return state_.GetJob(job_id)->state(); }

  FakeClock clock_;
  CoordinatorState state_{&clock_, Options()};
  Mutation mutation_;
};

}  // namespace likeness::coordinator::testing

#endif  // LIKENESS_TESTS_COORDINATOR_STATE_FIXTURE_H_

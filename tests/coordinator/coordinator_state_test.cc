// The state machine on a FakeClock: the DAG runs in order, leases expire and requeue, retry
// budgets, idempotency on (job, attempt), heartbeats, cancel and retry.
#include "coordinator/coordinator_state.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/state_fixture.h"

namespace likeness::coordinator {
namespace {

using ::likeness::coordinator::testing::kTestLeaseTimeoutMs;
using ::likeness::coordinator::testing::kTwoByTwo;
using ::likeness::coordinator::testing::StateTest;
using ::testing::HasSubstr;

using CoordinatorStateTest = StateTest;

TEST_F(CoordinatorStateTest, ASweepRunsTrainThenGenerateThenEvaluate) {
  const std::string sweep = Submit(kTwoByTwo);
  const std::string worker = Register("node-a", 1);
  std::vector<v1::JobKind> kinds;
  for (;;) {
    v1::LeaseResponse lease = Lease(worker);
    if (!lease.has_job()) break;
    EXPECT_EQ(lease.job().attempt(), 1);
    EXPECT_EQ(lease.world_size(), 1);
    kinds.push_back(lease.job().spec().kind());
    ASSERT_TRUE(Complete(worker, lease.job()).ok());
  }
  ASSERT_EQ(kinds.size(), 10u);  // 2 train + 4 generate + 4 evaluate
  EXPECT_EQ(kinds[0], v1::JOB_KIND_TRAIN);
  // Graph order is depth first, so FIFO finishes a run's points before the next run starts.
  EXPECT_EQ(kinds[1], v1::JOB_KIND_GENERATE);
  EXPECT_EQ(kinds[9], v1::JOB_KIND_EVALUATE);
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(state_.GetSweep(sweep)->job_counts().at("JOB_STATE_SUCCEEDED"), 10);
}

TEST_F(CoordinatorStateTest, AWorkerGetsOnlyWhatFitsItsFreeDevices) {
  Submit(R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {method: lora, steps: 10}
axes: [{field: train.seed, values: [1, 2, 3]}]
)yaml");
  const std::string worker = Register("node-a", 2);
  EXPECT_TRUE(Lease(worker).has_job());
  EXPECT_TRUE(Lease(worker).has_job());
  v1::LeaseResponse third = Lease(worker);
  EXPECT_FALSE(third.has_job());
  EXPECT_GT(third.retry_after_ms(), 0);
}

TEST_F(CoordinatorStateTest, AnExpiredLeaseRequeuesAndTheNextAttemptResumes) {
  Submit(kTwoByTwo);
  const std::string dead = Register("node-a", 1);
  const std::string alive = Register("node-b", 1);
  v1::LeaseResponse lease = Lease(dead);
  ASSERT_TRUE(lease.has_job());
  const std::string job_id = lease.job().id();
  v1::ReportRequest report;
  report.set_worker_id(dead);
  *report.mutable_attempt() = AttemptOf(lease.job());
  report.mutable_progress()->set_step(3);
  report.mutable_progress()->set_last_checkpoint_step(2);
  ASSERT_TRUE(state_.Report(report, &mutation_).ok());

  clock_.AdvanceMs(kTestLeaseTimeoutMs / 2);
  ASSERT_TRUE(Heartbeat(alive, {}).ok());
  state_.ExpireLeases(&mutation_);
  EXPECT_EQ(StateOf(job_id), v1::JOB_STATE_LEASED);  // not yet
  clock_.AdvanceMs(kTestLeaseTimeoutMs);
  ASSERT_TRUE(Heartbeat(alive, {}).ok());
  state_.ExpireLeases(&mutation_);
  EXPECT_EQ(StateOf(job_id), v1::JOB_STATE_QUEUED);
  v1::Job requeued = *state_.GetJob(job_id);
  EXPECT_EQ(requeued.infrastructure_failures(), 1);
  EXPECT_EQ(requeued.progress().last_checkpoint_step(), 2);
  EXPECT_THAT(requeued.error(), HasSubstr("expired"));

  // The dead worker is lost: it must register again.
  EXPECT_TRUE(absl::IsFailedPrecondition(state_.Lease([&] {
    v1::LeaseRequest r;
    r.set_worker_id(dead);
    return r;
  }(), &mutation_).status()));

  v1::LeaseResponse second = Lease(alive);
  ASSERT_TRUE(second.has_job());
  EXPECT_EQ(second.job().id(), job_id);
  EXPECT_EQ(second.job().attempt(), 2);
  EXPECT_TRUE(second.job().spec().train().resume());
  // The dead worker's late Complete for attempt 1 changes nothing.
  EXPECT_TRUE(absl::IsFailedPrecondition(Complete(dead, lease.job())));
  EXPECT_EQ(StateOf(job_id), v1::JOB_STATE_LEASED);
}

TEST_F(CoordinatorStateTest, TheInfrastructureBudgetEndsInFailureAndCancelsDependents) {
  std::string yaml = std::string(kTwoByTwo) + "retry: {max_infrastructure_retries: 2}\n";
  const std::string sweep = Submit(yaml);
  const std::string worker = Register("node-a", 1);
  std::string job_id;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    v1::LeaseResponse lease = Lease(worker);
    ASSERT_TRUE(lease.has_job());
    if (job_id.empty()) job_id = lease.job().id();
    ASSERT_EQ(lease.job().id(), job_id);
    auto failed = Fail(worker, lease.job(), v1::FAILURE_KIND_INFRASTRUCTURE);
    ASSERT_TRUE(failed.ok());
    EXPECT_EQ(failed->will_retry(), attempt < 3);
  }
  EXPECT_EQ(StateOf(job_id), v1::JOB_STATE_FAILED);
  EXPECT_THAT(state_.GetJob(job_id)->error(), HasSubstr("3 infrastructure failures"));
  // Its generate and evaluate jobs can never run.
  int cancelled = 0;
  for (const v1::Job& job : state_.ListJobs(sweep, v1::JOB_STATE_CANCELLED)) {
    EXPECT_THAT(job.error(), HasSubstr("dependency"));
    ++cancelled;
  }
  EXPECT_EQ(cancelled, 4);
  RunAll(worker);
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_FAILED);
}

TEST_F(CoordinatorStateTest, JobFailuresAreNotRetriedUntilAUserRetries) {
  const std::string sweep = Submit(kTwoByTwo);
  const std::string worker = Register("node-a", 1);
  v1::LeaseResponse lease = Lease(worker);
  auto failed = Fail(worker, lease.job(), v1::FAILURE_KIND_JOB);
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed->will_retry());
  EXPECT_EQ(StateOf(lease.job().id()), v1::JOB_STATE_FAILED);
  EXPECT_EQ(state_.GetJob(lease.job().id())->job_failures(), 1);
  RunAll(worker);
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_FAILED);

  v1::RetryRequest retry;
  retry.set_job_id(lease.job().id());
  auto retried = state_.Retry(retry, &mutation_);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->requeued(), 5);  // the job, its 2 generate and 2 evaluate jobs
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_RUNNING);
  EXPECT_EQ(RunAll(worker), 5);
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_SUCCEEDED);
  // Retrying a job that did not fail is refused.
  EXPECT_TRUE(absl::IsFailedPrecondition(state_.Retry(retry, &mutation_).status()));
}

TEST_F(CoordinatorStateTest, CallsAreIdempotentOnJobAndAttempt) {
  Submit(kTwoByTwo);
  const std::string worker = Register("node-a", 1);
  v1::LeaseResponse lease = Lease(worker);
  ASSERT_TRUE(Complete(worker, lease.job()).ok());
  const size_t transitions = mutation_.transitions.size();
  EXPECT_TRUE(Complete(worker, lease.job()).ok());  // the answer was lost; the call repeats
  EXPECT_EQ(mutation_.transitions.size(), transitions);

  v1::LeaseResponse other = Lease(worker);
  auto first = Fail(worker, other.job(), v1::FAILURE_KIND_INFRASTRUCTURE);
  auto again = Fail(worker, other.job(), v1::FAILURE_KIND_INFRASTRUCTURE);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->will_retry(), again->will_retry());
  EXPECT_EQ(state_.GetJob(other.job().id())->infrastructure_failures(), 1);
  // A Complete for an attempt that is not the current lease is refused.
  v1::Job stale = other.job();
  stale.set_attempt(7);
  EXPECT_TRUE(absl::IsFailedPrecondition(Complete(worker, stale)));
}

TEST_F(CoordinatorStateTest, SubmitWithTheSameRequestIdReturnsTheSameSweep) {
  const std::string first = Submit(kTwoByTwo, "req-1");
  const std::string second = Submit(kTwoByTwo, "req-1");
  EXPECT_EQ(first, second);
  EXPECT_EQ(state_.ListSweeps().size(), 1u);
  EXPECT_NE(Submit(kTwoByTwo, "req-2"), first);
}

TEST_F(CoordinatorStateTest, InvalidSweepsAreRefusedWithTheField) {
  v1::SubmitRequest request;
  *request.mutable_spec() = testing::ParseSweep(std::string(kTwoByTwo) +
                                                "  - {field: train.learning_rat, values: [1]}\n");
  auto response = state_.Submit(request, &mutation_);
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(response.status()));
  EXPECT_THAT(std::string(response.status().message()),
              HasSubstr("axes[2].field 'train.learning_rat': no such field"));
  EXPECT_TRUE(state_.ListSweeps().empty());
}

TEST_F(CoordinatorStateTest, HeartbeatsExtendListedLeasesAndEndForgottenOnes) {
  Submit(kTwoByTwo);
  const std::string worker = Register("node-a", 2);
  v1::Job a = Lease(worker).job();
  v1::Job b = Lease(worker).job();
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceMs(kTestLeaseTimeoutMs / 2);
    ASSERT_TRUE(Heartbeat(worker, {a, b}).ok());
    state_.ExpireLeases(&mutation_);
  }
  EXPECT_EQ(StateOf(a.id()), v1::JOB_STATE_LEASED);
  // The worker no longer lists b: its process died, the lease ends at once.
  ASSERT_TRUE(Heartbeat(worker, {a}).ok());
  EXPECT_EQ(StateOf(b.id()), v1::JOB_STATE_QUEUED);
  // A cancelled job is in the stop list.
  v1::CancelRequest cancel;
  cancel.set_job_id(a.id());
  ASSERT_TRUE(state_.Cancel(cancel, &mutation_).ok());
  auto response = Heartbeat(worker, {a});
  ASSERT_TRUE(response.ok());
  ASSERT_EQ(response->stop_size(), 1);
  EXPECT_EQ(response->stop(0).job_id(), a.id());
}

TEST_F(CoordinatorStateTest, AHeartbeatOlderThanALeaseDoesNotEndIt) {
  Submit(kTwoByTwo);
  const std::string worker = Register("node-a", 1);
  v1::Job job = Lease(worker).job();
  ASSERT_TRUE(Heartbeat(worker, {}).ok());  // composed before the lease arrived
  EXPECT_EQ(StateOf(job.id()), v1::JOB_STATE_LEASED);
  // Never confirmed, it still times out.
  clock_.AdvanceMs(kTestLeaseTimeoutMs / 2);
  ASSERT_TRUE(Heartbeat(worker, {}).ok());
  clock_.AdvanceMs(kTestLeaseTimeoutMs / 2 + 1);
  ASSERT_TRUE(Heartbeat(worker, {}).ok());
  state_.ExpireLeases(&mutation_);
  EXPECT_EQ(StateOf(job.id()), v1::JOB_STATE_QUEUED);
}

TEST_F(CoordinatorStateTest, CancellingASweepStopsItsLeasesAndEndsIt) {
  const std::string sweep = Submit(kTwoByTwo);
  const std::string worker = Register("node-a", 1);
  v1::Job job = Lease(worker).job();
  v1::CancelRequest cancel;
  cancel.set_sweep_id(sweep);
  auto cancelled = state_.Cancel(cancel, &mutation_);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->cancelled(), 10);
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_CANCELLED);
  v1::ReportRequest report;
  report.set_worker_id(worker);
  *report.mutable_attempt() = AttemptOf(job);
  auto answer = state_.Report(report, &mutation_);
  ASSERT_TRUE(answer.ok());
  EXPECT_TRUE(answer->stop());
  EXPECT_TRUE(Lease(worker).job().id().empty());  // its device is free, nothing is queued
  v1::RetryRequest retry;
  retry.set_sweep_id(sweep);
  EXPECT_EQ(state_.Retry(retry, &mutation_)->requeued(), 10);
  EXPECT_EQ(RunAll(worker), 10);
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_SUCCEEDED);
}

TEST_F(CoordinatorStateTest, ARestartedAgentLosesItsLeases) {
  Submit(kTwoByTwo);
  const std::string first = Register("node-a", 1);
  v1::Job job = Lease(first).job();
  const std::string second = Register("node-a", 1);
  EXPECT_NE(first, second);
  EXPECT_EQ(StateOf(job.id()), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(Lease(second).job().id(), job.id());
}

TEST_F(CoordinatorStateTest, EveryTransitionIsRecordedWithItsAttempt) {
  Submit(kTwoByTwo);
  const std::string worker = Register("node-a", 1);
  mutation_ = Mutation();
  v1::Job job = Lease(worker).job();
  ASSERT_TRUE(Complete(worker, job).ok());
  ASSERT_GE(mutation_.transitions.size(), 2u);
  EXPECT_EQ(mutation_.transitions[0].job_id, job.id());
  EXPECT_EQ(mutation_.transitions[0].to, v1::JOB_STATE_LEASED);
  EXPECT_EQ(mutation_.transitions[0].attempt, 1);
  EXPECT_EQ(mutation_.transitions[0].worker_id, worker);
  EXPECT_EQ(mutation_.transitions[1].to, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(mutation_.jobs.at(job.id()).state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(CoordinatorStateTest, GangLeasesReachEveryMember) {
  Submit(std::string(kTwoByTwo) + "train_resources: {nodes: 2}\nskip_generate: true\n");
  const std::string a = Register("node-a", 8);
  const std::string b = Register("node-b", 8);
  EXPECT_FALSE(Lease(a).has_job());  // reserved
  v1::LeaseResponse lease_b = Lease(b);
  ASSERT_TRUE(lease_b.has_job());
  EXPECT_EQ(lease_b.world_size(), 2);
  EXPECT_EQ(lease_b.rank(), 1);
  v1::LeaseResponse lease_a = Lease(a);
  ASSERT_TRUE(lease_a.has_job());
  EXPECT_EQ(lease_a.job().id(), lease_b.job().id());
  EXPECT_EQ(lease_a.rank(), 0);
  EXPECT_EQ(lease_a.peers_size(), 2);
  EXPECT_EQ(lease_a.peers(0), "node-a");
  ASSERT_TRUE(Complete(a, lease_a.job()).ok());
}

// Thousands of jobs and many workers through the pure state machine: guards against an
// accidental quadratic path (the 10k-job gRPC benchmark measures the real thing).
TEST_F(CoordinatorStateTest, ThousandsOfJobsRunThroughManyWorkers) {
  constexpr int kWorkers = 100;
  const std::string sweep = Submit(R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {method: lora, lr_scheduler: cosine}
axes:
  - {field: train.seed, min: 1, max: 500, num: 500}
  - {field: train.steps, values: [100, 200]}
)yaml");
  std::vector<std::string> workers;
  for (int w = 0; w < kWorkers; ++w) workers.push_back(Register("node-" + std::to_string(w), 1));
  int completed = 0;
  for (bool progress = true; progress;) {
    progress = false;
    std::vector<v1::Job> leased;
    for (const std::string& worker : workers) leased.push_back(Lease(worker).job());
    for (size_t w = 0; w < workers.size(); ++w) {
      if (leased[w].id().empty()) continue;
      ASSERT_TRUE(Complete(workers[w], leased[w]).ok());
      ++completed;
      progress = true;
    }
    clock_.AdvanceMs(10);
    state_.ExpireLeases(&mutation_);
  }
  EXPECT_EQ(completed, 3000);  // 1000 points x (train, generate, evaluate)
  EXPECT_EQ(state_.GetSweep(sweep)->state(), v1::SWEEP_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace likeness::coordinator

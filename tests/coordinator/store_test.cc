// The SQLite journal: a restarted coordinator resumes with nothing lost, leases are re-armed,
// (job, attempt) idempotency holds across the restart, and a crash before COMMIT loses the
// whole change, never half of it.
#include "coordinator/store.h"

#include <unistd.h>

#include <filesystem>

#include "coordinator/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/state_fixture.h"

namespace likeness::coordinator {
namespace {

using ::likeness::coordinator::testing::kTestLeaseTimeoutMs;
using ::likeness::coordinator::testing::kTwoByTwo;
using ::likeness::coordinator::testing::ParseSweep;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("likeness_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A coordinator on the journal in dir_, driven by hand (no expiry thread).
  std::unique_ptr<Coordinator> Open() {
    CoordinatorOptions options;
    options.journal_path = (dir_ / "journal.db").string();
    options.state.artifact_root = (dir_ / "artifacts").string();
    options.state.lease_timeout_ms = kTestLeaseTimeoutMs;
    options.expire_leases_in_background = false;
    auto coordinator = Coordinator::Open(&clock_, options);
    EXPECT_TRUE(coordinator.ok()) << coordinator.status();
    return coordinator.ok() ? std::move(*coordinator) : nullptr;
  }

  template <typename T>
  T Do(Coordinator& c, std::function<absl::StatusOr<T>(CoordinatorState&, Mutation*)> change) {
    absl::StatusOr<T> result = c.Change<T>(change);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : T();
  }

  std::string Submit(Coordinator& c) {
    v1::SubmitRequest request;
    *request.mutable_spec() = ParseSweep(kTwoByTwo);
    return Do<v1::SubmitResponse>(c, [&](CoordinatorState& s, Mutation* m) {
             return s.Submit(request, m);
           }).sweep().id();
  }
  std::string Register(Coordinator& c, const std::string& name) {
    v1::RegisterRequest request;
    request.mutable_info()->set_hostname(name);
    request.mutable_info()->set_gpu_count(1);
    return Do<v1::RegisterResponse>(c, [&](CoordinatorState& s, Mutation* m) {
             return s.Register(request, m);
           }).worker_id();
  }
  v1::Job Lease(Coordinator& c, const std::string& worker) {
    v1::LeaseRequest request;
    request.set_worker_id(worker);
    return Do<v1::LeaseResponse>(c, [&](CoordinatorState& s, Mutation* m) {
             return s.Lease(request, m);
           }).job();
  }
  absl::Status Complete(Coordinator& c, const std::string& worker, const v1::Job& job) {
    v1::CompleteRequest request;
    request.set_worker_id(worker);
    request.mutable_attempt()->set_job_id(job.id());
    request.mutable_attempt()->set_attempt(job.attempt());
    v1::Artifact* artifact = request.add_artifacts();
    artifact->set_kind("checkpoint");
    artifact->set_path(job.id() + "/lora.safetensors");
    (*request.mutable_metrics())["clip_i"] = 0.75;
    return c.ChangeStatus([&](CoordinatorState& s, Mutation* m) { return s.Complete(request, m); });
  }

  std::filesystem::path dir_;
  FakeClock clock_;
};

TEST_F(StoreTest, ARestartResumesWithNothingLost) {
  std::string sweep, worker, done_id, leased_id;
  {
    auto c = Open();
    sweep = Submit(*c);
    worker = Register(*c, "node-a");
    v1::Job done = Lease(*c, worker);
    ASSERT_TRUE(Complete(*c, worker, done).ok());
    done_id = done.id();
    leased_id = Lease(*c, worker).id();
  }  // the coordinator stops (as if killed: every answered change is already committed)
  auto c = Open();
  auto job = c->Read([&](const CoordinatorState& s) { return s.GetJob(done_id); });
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(job->metrics().at("clip_i"), 0.75);
  ASSERT_EQ(job->artifacts_size(), 1);
  EXPECT_EQ(c->Read([&](const CoordinatorState& s) { return s.GetJob(leased_id); })->state(),
            v1::JOB_STATE_LEASED);
  auto restored = c->Read([&](const CoordinatorState& s) { return s.GetSweep(sweep); });
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->job_counts().at("JOB_STATE_SUCCEEDED"), 1);
  EXPECT_EQ(restored->job_counts().at("JOB_STATE_LEASED"), 1);
  EXPECT_EQ(restored->state(), v1::SWEEP_STATE_RUNNING);

  // The worker carries on with its lease, and the sweep runs to the end.
  v1::Job leased = *c->Read([&](const CoordinatorState& s) { return s.GetJob(leased_id); });
  ASSERT_TRUE(Complete(*c, worker, leased).ok());
  for (v1::Job next = Lease(*c, worker); !next.id().empty(); next = Lease(*c, worker)) {
    ASSERT_TRUE(Complete(*c, worker, next).ok());
  }
  EXPECT_EQ(c->Read([&](const CoordinatorState& s) { return s.GetSweep(sweep); })->state(),
            v1::SWEEP_STATE_SUCCEEDED);
  // A new sweep after the restart gets a new id.
  EXPECT_NE(Submit(*c), sweep);
}

TEST_F(StoreTest, LeaseTimersAreReArmedFromTheRestart) {
  std::string worker, job_id;
  {
    auto c = Open();
    Submit(*c);
    worker = Register(*c, "node-a");
    job_id = Lease(*c, worker).id();
  }
  clock_.AdvanceMs(10 * kTestLeaseTimeoutMs);  // the coordinator was down a long time
  auto c = Open();
  ASSERT_TRUE(c->ExpireLeasesNow().ok());
  EXPECT_EQ(c->Read([&](const CoordinatorState& s) { return s.GetJob(job_id); })->state(),
            v1::JOB_STATE_LEASED);  // the outage is not the worker's fault
  clock_.AdvanceMs(kTestLeaseTimeoutMs + 1);
  ASSERT_TRUE(c->ExpireLeasesNow().ok());
  EXPECT_EQ(c->Read([&](const CoordinatorState& s) { return s.GetJob(job_id); })->state(),
            v1::JOB_STATE_QUEUED);  // but a worker that stays silent loses it
}

TEST_F(StoreTest, ACompleteRepeatedAfterARestartIsIdempotent) {
  std::string worker;
  v1::Job job;
  {
    auto c = Open();
    Submit(*c);
    worker = Register(*c, "node-a");
    job = Lease(*c, worker);
    ASSERT_TRUE(Complete(*c, worker, job).ok());
  }
  auto c = Open();
  EXPECT_TRUE(Complete(*c, worker, job).ok());
  auto rows = c->store().Transitions(job.id());
  ASSERT_TRUE(rows.ok()) << rows.status();
  // submitted -> QUEUED, LEASED (attempt 1), SUCCEEDED (attempt 1): once each.
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].to, v1::JOB_STATE_QUEUED);
  EXPECT_EQ((*rows)[1].to, v1::JOB_STATE_LEASED);
  EXPECT_EQ((*rows)[1].attempt, 1);
  EXPECT_EQ((*rows)[1].worker_id, worker);
  EXPECT_EQ((*rows)[2].to, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ((*rows)[2].attempt, 1);
}

TEST_F(StoreTest, ACrashBeforeCommitLosesTheWholeChangeAndMemoryFollows) {
  auto c = Open();
  Submit(*c);
  const std::string worker = Register(*c, "node-a");
  c->store().ArmCrashPoint(kCrashBeforeCommit);
  v1::LeaseRequest request;
  request.set_worker_id(worker);
  auto lease = c->Change<v1::LeaseResponse>(
      [&](CoordinatorState& s, Mutation* m) { return s.Lease(request, m); });
  ASSERT_FALSE(lease.ok());
  EXPECT_TRUE(absl::IsUnavailable(lease.status())) << lease.status();  // clients retry
  c->store().ArmCrashPoint("");
  // Memory was rolled back with the journal: the job is still queued, attempt 0.
  auto jobs = c->Read([](const CoordinatorState& s) {
    return s.ListJobs("", v1::JOB_STATE_QUEUED);
  });
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].attempt(), 0);
  v1::Job retried = Lease(*c, worker);
  EXPECT_EQ(retried.attempt(), 1);
}

TEST_F(StoreTest, TheJournalUsesWalAndFullSync) {
  auto c = Open();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "journal.db-wal"));
}

}  // namespace
}  // namespace likeness::coordinator

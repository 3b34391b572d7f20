// The coordinator over loopback gRPC with in-process workers: a 2x2 sweep (10 jobs) runs to
// completion while one worker dies holding a lease (it expires and the job is requeued) and
// the coordinator is restarted mid-sweep (workers ride through it; nothing is lost or run
// twice to success).
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "coordinator/client.h"
#include "coordinator/coordinator.h"
#include "coordinator/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_worker.h"
#include "tests/coordinator/sweep_fixtures.h"

namespace likeness::coordinator {
namespace {

namespace fs = std::filesystem;
using ::likeness::coordinator::testing::FakeWorker;
using ::likeness::coordinator::testing::FakeWorkerOptions;
using ::likeness::coordinator::testing::kTwoByTwo;
using ::likeness::coordinator::testing::ParseSweep;
using ::testing::HasSubstr;

constexpr char kToken[] = "integration-test-token-0123456789";
// Short leases so a dead worker costs the test well under a second.
constexpr int64_t kLeaseTimeoutMs = 600;
constexpr int64_t kHeartbeatIntervalMs = 150;
constexpr auto kSweepDeadline = std::chrono::seconds(60);

class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("likeness_integration_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "artifacts");
    StartCoordinator("127.0.0.1:0");
    ClientOptions client;
    client.address = "127.0.0.1:" + std::to_string(port_);
    channel_ = *MakeChannel(client);
    sweeps_ = v1::SweepService::NewStub(channel_);
  }
  void TearDown() override {
    StopCoordinator();
    fs::remove_all(dir_);
  }

  void StartCoordinator(const std::string& listen) {
    CoordinatorOptions options;
    options.journal_path = (dir_ / "journal.db").string();
    options.state.artifact_root = (dir_ / "artifacts").string();
    options.state.lease_timeout_ms = kLeaseTimeoutMs;
    options.state.heartbeat_interval_ms = kHeartbeatIntervalMs;
    options.state.lease_retry_after_ms = 20;
    auto coordinator = Coordinator::Open(&clock_, options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
    ServerOptions server;
    server.listen = listen;
    server.token = kToken;
    auto started = CoordinatorServer::Start(coordinator_.get(), server);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(*started);
    port_ = server_->port();
  }

  void StopCoordinator() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
    coordinator_.reset();
  }

  v1::Sweep GetSweep(const std::string& id) {
    v1::GetSweepRequest request;
    request.set_sweep_id(id);
    v1::Sweep sweep;
    grpc::Status status = sweeps_->GetSweep(MakeContext(kToken).get(), request, &sweep);
    return status.ok() ? sweep : v1::Sweep();
  }

  std::vector<v1::Job> ListJobs(const std::string& sweep_id) {
    v1::ListJobsRequest request;
    request.set_sweep_id(sweep_id);
    v1::ListJobsResponse response;
    EXPECT_TRUE(sweeps_->ListJobs(MakeContext(kToken).get(), request, &response).ok());
    return {response.jobs().begin(), response.jobs().end()};
  }

  int Succeeded(const std::string& sweep_id) {
    int count = 0;
    for (const v1::Job& job : ListJobs(sweep_id)) count += job.state() == v1::JOB_STATE_SUCCEEDED;
    return count;
  }

  template <typename Predicate>
  bool WaitFor(Predicate done, std::chrono::seconds limit = kSweepDeadline) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  fs::path dir_;
  SystemClock clock_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<CoordinatorServer> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SweepService::Stub> sweeps_;
};

TEST_F(IntegrationTest, ASweepCompletesThroughAWorkerDeathAndACoordinatorRestart) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.mutable_subjects(0)->set_image_dir((dir_ / "dog").string());
  v1::SubmitRequest submit;
  *submit.mutable_spec() = spec;
  submit.set_request_id("integration-1");
  v1::SubmitResponse submitted;
  ASSERT_TRUE(sweeps_->Submit(MakeContext(kToken).get(), submit, &submitted).ok());
  const std::string sweep_id = submitted.sweep().id();
  ASSERT_EQ(submitted.job_count(), 10);

  // Watch from the start: the stream ends by itself when the sweep does.
  std::map<std::string, v1::JobState> last_seen;
  v1::SweepState watched_end = v1::SWEEP_STATE_UNSPECIFIED;
  std::thread watcher([&] {
    v1::WatchRequest request;
    request.set_sweep_id(sweep_id);
    // Its own channel: the stream must outlive nothing but itself.
    auto context = MakeContext(kToken);
    auto reader = sweeps_->Watch(context.get(), request);
    v1::WatchEvent event;
    while (reader->Read(&event)) {
      last_seen[event.job().id()] = event.job().state();
      watched_end = event.sweep().state();
    }
  });

  // A worker that takes the first job and dies holding it.
  FakeWorker doomed(channel_, kToken, {"doomed", 1, /*die_after_first_lease=*/true});
  doomed.Start();
  ASSERT_TRUE(WaitFor([&] { return doomed.died(); }, std::chrono::seconds(10)));
  const std::string orphan = doomed.first_job();
  doomed.Stop();

  FakeWorker a(channel_, kToken, {"node-a", 1});
  FakeWorker b(channel_, kToken, {"node-b", 2});
  a.Start();
  b.Start();
  ASSERT_TRUE(WaitFor([&] { return Succeeded(sweep_id) >= 3; })) << "no progress before restart";

  // Restart the coordinator on the same port, mid-sweep.
  EXPECT_LT(Succeeded(sweep_id), 10) << "the sweep ended before the restart";
  StopCoordinator();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  StartCoordinator("127.0.0.1:" + std::to_string(port_));

  ASSERT_TRUE(WaitFor([&] { return GetSweep(sweep_id).state() == v1::SWEEP_STATE_SUCCEEDED; }))
      << "sweep did not finish";
  a.Stop();
  b.Stop();
  watcher.join();  // the Watch stream that started before the restart ended with it

  // Every job succeeded, exactly once, with its artifact inside the root.
  const std::vector<v1::Job> jobs = ListJobs(sweep_id);
  ASSERT_EQ(jobs.size(), 10u);
  for (const v1::Job& job : jobs) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.id();
    ASSERT_EQ(job.artifacts_size(), 1) << job.id();
    EXPECT_FALSE(fs::path(job.artifacts(0).path()).is_absolute());
    EXPECT_TRUE(fs::exists(dir_ / "artifacts" / job.artifacts(0).path())) << job.id();
    auto transitions = coordinator_->store().Transitions(job.id());
    ASSERT_TRUE(transitions.ok());
    int successes = 0;
    for (const Transition& row : *transitions) successes += row.to == v1::JOB_STATE_SUCCEEDED;
    EXPECT_EQ(successes, 1) << job.id();
  }
  EXPECT_EQ(a.completed() + b.completed(), 10);

  // The dead worker's job was requeued after its lease expired, and ran again.
  const auto orphan_job = std::find_if(jobs.begin(), jobs.end(),
                                       [&](const v1::Job& j) { return j.id() == orphan; });
  ASSERT_NE(orphan_job, jobs.end());
  EXPECT_GE(orphan_job->attempt(), 2);
  EXPECT_GE(orphan_job->infrastructure_failures(), 1);
  auto rows = coordinator_->store().Transitions(orphan);
  ASSERT_TRUE(rows.ok());
  bool expired = false;
  for (const Transition& row : *rows) {
    expired |= row.from == v1::JOB_STATE_LEASED && row.to == v1::JOB_STATE_QUEUED &&
               row.reason.find("expired") != std::string::npos;
  }
  EXPECT_TRUE(expired);

  // The Watch stream saw jobs move (it ended at the restart or at the sweep's end).
  EXPECT_FALSE(last_seen.empty());

  // Submitting the same request again returns the same sweep rather than a second one.
  v1::SubmitResponse again;
  ASSERT_TRUE(sweeps_->Submit(MakeContext(kToken).get(), submit, &again).ok());
  EXPECT_EQ(again.sweep().id(), sweep_id);
}

TEST_F(IntegrationTest, WatchStreamsProgressUntilTheSweepEnds) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.set_skip_generate(true);
  v1::SubmitRequest submit;
  *submit.mutable_spec() = spec;
  v1::SubmitResponse submitted;
  ASSERT_TRUE(sweeps_->Submit(MakeContext(kToken).get(), submit, &submitted).ok());
  FakeWorker worker(channel_, kToken, {"node-a", 1});
  worker.Start();
  v1::WatchRequest request;
  request.set_sweep_id(submitted.sweep().id());
  auto context = MakeContext(kToken, std::chrono::milliseconds(30'000));
  auto reader = sweeps_->Watch(context.get(), request);
  v1::WatchEvent event;
  int events = 0;
  bool saw_progress = false;
  v1::SweepState end = v1::SWEEP_STATE_UNSPECIFIED;
  while (reader->Read(&event)) {
    ++events;
    saw_progress |= event.job().progress().step() > 0;
    end = event.sweep().state();
  }
  EXPECT_TRUE(reader->Finish().ok());
  worker.Stop();
  EXPECT_GE(events, 2);
  EXPECT_TRUE(saw_progress);
  EXPECT_EQ(end, v1::SWEEP_STATE_SUCCEEDED);
}

TEST_F(IntegrationTest, AStoppedAgentHandsItsJobBackAtOnce) {
  v1::SubmitRequest submit;
  *submit.mutable_spec() = ParseSweep(kTwoByTwo);
  v1::SubmitResponse submitted;
  ASSERT_TRUE(sweeps_->Submit(MakeContext(kToken).get(), submit, &submitted).ok());
  const std::string sweep_id = submitted.sweep().id();
  FakeWorkerOptions slow{"node-a", 1};
  slow.steps_per_job = 1000;  // never finishes by itself
  FakeWorker worker(channel_, kToken, slow);
  worker.Start();
  auto leased = [&] {
    for (const v1::Job& job : ListJobs(sweep_id)) {
      if (job.state() == v1::JOB_STATE_LEASED && job.progress().step() > 0) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor(leased, std::chrono::seconds(10)));
  const auto stopped_at = std::chrono::steady_clock::now();
  worker.Stop();  // a clean shutdown reports the attempt as an infrastructure failure
  const std::vector<v1::Job> jobs = ListJobs(sweep_id);
  const auto requeued = std::find_if(jobs.begin(), jobs.end(), [](const v1::Job& job) {
    return job.infrastructure_failures() == 1;
  });
  ASSERT_NE(requeued, jobs.end());
  EXPECT_EQ(requeued->state(), v1::JOB_STATE_QUEUED);
  EXPECT_GT(requeued->progress().last_checkpoint_step(), 0);  // the next attempt resumes there
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::milliseconds(kLeaseTimeoutMs));
}

TEST_F(IntegrationTest, ListJobsPagesThroughALargeSweep) {
  v1::SubmitRequest submit;
  *submit.mutable_spec() = ParseSweep(R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {method: lora, steps: 10}
skip_generate: true
axes: [{field: train.seed, min: 1, max: 300, num: 300}]
)yaml");
  v1::SubmitResponse submitted;
  ASSERT_TRUE(sweeps_->Submit(MakeContext(kToken).get(), submit, &submitted).ok());
  v1::ListJobsRequest request;
  request.set_sweep_id(submitted.sweep().id());
  request.set_page_size(128);
  std::vector<int> page_sizes;
  std::set<std::string> ids;
  do {
    v1::ListJobsResponse response;
    ASSERT_TRUE(sweeps_->ListJobs(MakeContext(kToken).get(), request, &response).ok());
    page_sizes.push_back(response.jobs_size());
    for (const v1::Job& job : response.jobs()) ids.insert(job.id());
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  EXPECT_EQ(page_sizes, (std::vector<int>{128, 128, 44}));
  EXPECT_EQ(ids.size(), 300u);
  request.set_page_token("not-a-token");
  v1::ListJobsResponse response;
  EXPECT_EQ(sweeps_->ListJobs(MakeContext(kToken).get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(IntegrationTest, AJobFailureIsNotRetriedButRetryRunsIt) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.set_skip_generate(true);
  v1::SubmitRequest submit;
  *submit.mutable_spec() = spec;
  v1::SubmitResponse submitted;
  ASSERT_TRUE(sweeps_->Submit(MakeContext(kToken).get(), submit, &submitted).ok());
  auto workers = v1::WorkerService::NewStub(channel_);
  v1::RegisterRequest reg;
  reg.mutable_info()->set_hostname("manual");
  v1::RegisterResponse registered;
  ASSERT_TRUE(workers->Register(MakeContext(kToken).get(), reg, &registered).ok());
  v1::LeaseRequest lease_request;
  lease_request.set_worker_id(registered.worker_id());
  v1::LeaseResponse lease;
  ASSERT_TRUE(workers->Lease(MakeContext(kToken).get(), lease_request, &lease).ok());
  ASSERT_TRUE(lease.has_job());
  v1::FailRequest fail;
  fail.set_worker_id(registered.worker_id());
  fail.mutable_attempt()->set_job_id(lease.job().id());
  fail.mutable_attempt()->set_attempt(lease.job().attempt());
  fail.set_kind(v1::FAILURE_KIND_JOB);
  fail.set_error("instance_dir: no images");
  v1::FailResponse failed;
  ASSERT_TRUE(workers->Fail(MakeContext(kToken).get(), fail, &failed).ok());
  EXPECT_FALSE(failed.will_retry());
  v1::GetJobRequest get;
  get.set_job_id(lease.job().id());
  v1::Job job;
  ASSERT_TRUE(sweeps_->GetJob(MakeContext(kToken).get(), get, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.error(), HasSubstr("instance_dir: no images"));

  v1::RetryRequest retry;
  retry.set_job_id(job.id());
  v1::RetryResponse retried;
  ASSERT_TRUE(sweeps_->Retry(MakeContext(kToken).get(), retry, &retried).ok());
  EXPECT_EQ(retried.requeued(), 1);
  v1::CancelRequest cancel;
  cancel.set_sweep_id(submitted.sweep().id());
  v1::CancelResponse cancelled;
  ASSERT_TRUE(sweeps_->Cancel(MakeContext(kToken).get(), cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.cancelled(), 2);
  EXPECT_EQ(GetSweep(submitted.sweep().id()).state(), v1::SWEEP_STATE_CANCELLED);
}

}  // namespace
}  // namespace likeness::coordinator

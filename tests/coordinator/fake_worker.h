// An in-process worker: the real agent (worker/agent/agent.h) speaking the real gRPC protocol,
// with a runner that "runs" a job by reporting a few progress steps and writing a small file
// into the job's output folder. It can die right after its first lease, as a killed node
// would: no further call, so the lease must expire.
#ifndef LIKENESS_TESTS_COORDINATOR_FAKE_WORKER_H_
#define LIKENESS_TESTS_COORDINATOR_FAKE_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "protos/likeness.grpc.pb.h"
#include "worker/agent/agent.h"
#include "worker/agent/job_runner.h"

namespace likeness::coordinator::testing {

struct FakeWorkerOptions {
  std::string name;
  int gpus = 1;
  bool die_after_first_lease = false;
  int steps_per_job = 3;
  std::chrono::milliseconds step_time{30};
};

class FakeRunner final : public agent::JobRunner {
 public:
  explicit FakeRunner(FakeWorkerOptions options) : options_(std::move(options)) {}
  void set_agent(agent::Agent* agent) { agent_ = agent; }

  agent::JobOutcome Run(const v1::LeaseResponse& lease, agent::JobContext* context) override {
    const v1::Job& job = lease.job();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (first_job_.empty()) first_job_ = job.id();
    }
    agent::JobOutcome outcome;
    if (options_.die_after_first_lease) {
      agent_->Kill();
      died_ = true;
      return outcome;
    }
    for (int step = 1; step <= options_.steps_per_job; ++step) {
      std::this_thread::sleep_for(options_.step_time);
      outcome.progress.set_step(step);
      outcome.progress.set_total_steps(options_.steps_per_job);
      outcome.progress.set_loss(1.0 / step);
      outcome.progress.set_last_checkpoint_step(step);
      if (!context->Report(outcome.progress)) {
        outcome.status = absl::CancelledError("stopped");
        return outcome;
      }
    }
    // The job's output, written where the coordinator told it to.
    const std::filesystem::path out = job.spec().output_dir();
    std::filesystem::create_directories(out);
    std::ofstream(out / "result.txt") << job.id() << " attempt " << job.attempt() << "\n";
    v1::Artifact& artifact = outcome.artifacts.emplace_back();
    artifact.set_kind("result");
    artifact.set_path((out / "result.txt").string());
    if (job.spec().kind() == v1::JOB_KIND_EVALUATE) {
      // A metric that depends on the point, so the leaderboard has an order.
      double metric = 0.5;
      for (const v1::AxisValue& value : job.spec().point()) {
        if (value.field() == "train.learning_rate") metric += std::stod(value.value()) * 1000;
      }
      outcome.metrics["clip_i"] = metric;
    }
    return outcome;
  }

  bool died() const { return died_; }
  std::string first_job() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_job_;
  }

 private:
  FakeWorkerOptions options_;
  agent::Agent* agent_ = nullptr;
  std::atomic<bool> died_{false};
  mutable std::mutex mutex_;
  std::string first_job_;
};

class FakeWorker {
 public:
  FakeWorker(std::shared_ptr<grpc::Channel> channel, std::string token, FakeWorkerOptions options)
      : runner_(options), agent_(std::move(channel), AgentOptionsFor(options, token), &runner_) {
    runner_.set_agent(&agent_);
  }
  ~FakeWorker() { Stop(); }

  void Start() { thread_ = std::thread([this] { agent_.Run().IgnoreError(); }); }
  void Stop() {
    agent_.Stop();
    if (thread_.joinable()) thread_.join();
  }
  int completed() const { return agent_.completed(); }
  bool died() const { return runner_.died(); }
  std::string first_job() const { return runner_.first_job(); }

 private:
  static agent::AgentOptions AgentOptionsFor(const FakeWorkerOptions& options,
                                             const std::string& token) {
    agent::AgentOptions agent_options;
    agent_options.info.set_hostname(options.name);
    agent_options.info.set_gpu_count(options.gpus);
    agent_options.info.set_gpu_model("Fake GPU");
    agent_options.token = token;
    agent_options.retry_pause = std::chrono::milliseconds(20);
    agent_options.call_timeout = std::chrono::milliseconds(2000);
    return agent_options;
  }

  FakeRunner runner_;
  agent::Agent agent_;
  std::thread thread_;
};

}  // namespace likeness::coordinator::testing

#endif  // LIKENESS_TESTS_COORDINATOR_FAKE_WORKER_H_

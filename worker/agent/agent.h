// The worker agent's protocol loop (coordinator/coordinator_state.h numbers the protocol):
//   1. Register this node (GPUs, model, memory) and learn the heartbeat interval.
//   2. Ask for a lease; the coordinator gives only jobs that fit what is free here. Each
//      leased job runs on its own thread through the JobRunner.
//   3. A heartbeat thread lists every running attempt each interval and stops the ones the
//      coordinator names (cancelled, or no longer ours).
//   4. A finished job is reported with Complete (artifacts, metrics) or Fail (kind, error).
// Calls answered UNAVAILABLE or DEADLINE_EXCEEDED (a coordinator restarting) are repeated,
// which is safe because the coordinator is idempotent on (job, attempt). FAILED_PRECONDITION
// on Lease/Heartbeat means this worker was declared lost: its jobs are stopped and it
// registers again.
#ifndef LIKENESS_WORKER_AGENT_AGENT_H_
#define LIKENESS_WORKER_AGENT_AGENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "protos/likeness.grpc.pb.h"
#include "worker/agent/job_runner.h"

namespace likeness::agent {

// Pause between repeats of a call that found the coordinator unavailable.
inline constexpr std::chrono::milliseconds kRetryPause{200};
// Deadline of one call: the coordinator answers in milliseconds unless it is down.
inline constexpr std::chrono::milliseconds kCallTimeout{10'000};

struct AgentOptions {
  v1::WorkerInfo info;
  std::string token;
  std::chrono::milliseconds retry_pause = kRetryPause;
  std::chrono::milliseconds call_timeout = kCallTimeout;
};

class Agent {
 public:
  Agent(std::shared_ptr<grpc::Channel> channel, AgentOptions options, JobRunner* runner);
  ~Agent();

  // Runs until Stop() or Kill(): registers, leases, runs, reports. Returns the error that
  // ended it (none after Stop).
  absl::Status Run();
  // Ends Run after the running jobs are told to stop and have reported.
  void Stop();
  // Ends everything at once without another call to the coordinator, as a killed process
  // would: leases are left to expire (tests of the coordinator's recovery use this).
  void Kill();

  int completed() const { return completed_; }
  const std::string& worker_id() const { return worker_id_; }

 private:
  struct Running;
  class Context;

  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call);
  absl::Status Register();
  void HeartbeatLoop();
  void RunJob(std::shared_ptr<Running> job);
  void StopAll();
  void JoinFinished(bool all);

  std::unique_ptr<v1::WorkerService::Stub> stub_;
  AgentOptions options_;
  JobRunner* runner_;
  std::string worker_id_;
  std::chrono::milliseconds heartbeat_interval_{1000};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> killed_{false};
  std::atomic<int> completed_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, std::shared_ptr<Running>> running_;  // by job id
  std::thread heartbeat_thread_;
};

}  // namespace likeness::agent

#endif  // LIKENESS_WORKER_AGENT_AGENT_H_

// Collective communication between the ranks of one data-parallel job (issue 6).
//
// Three implementations answer this interface: single-process (world of one), MPI (CPU tensors;
// also how CPU-only runs and CI exercise the whole path) and NCCL (CUDA tensors; compiled only
// with LIKENESS_HAVE_NCCL). CommunicatorFromEnvironment() (communicator_factory.h) picks one.
//
// Failure protocol (the reason every call has a deadline):
//   1. Every collective gets a deadline: now + timeout() (kDefaultCollectiveTimeout unless the
//      job says otherwise through kCollectiveTimeoutEnv).
//   2. Non-blocking calls are started and polled (MPI_Test, cudaEventQuery +
//      ncclCommGetAsyncError) until they finish, fail or pass the deadline; no rank ever blocks
//      inside MPI or NCCL without a deadline.
//   3. On timeout or error the rank finds out which peers did not arrive (MPI: each rank answers
//      "which collective are you in" pings while it polls, see mpi_communicator.h) and builds
//      one message naming the collective, its sequence number and those ranks.
//   4. The communicator is then broken: the pending operation cannot be cancelled, so every
//      later call fails at once. With abort_on_error (the default for real jobs) the rank prints
//      the message and aborts the whole job (MPI_Abort / ncclCommAbort) with kRequeueExitCode;
//      otherwise the status is returned (tests) and the caller must call Abort().
// Every rank in the same collective hits its own deadline, so the whole job ends within one
// timeout (plus kDiagnosisGrace) of the moment a peer died or stalled: never a silent hang.
#ifndef LIKENESS_WORKER_DIST_COMMUNICATOR_H_
#define LIKENESS_WORKER_DIST_COMMUNICATOR_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/dist/requeue.h"

namespace likeness::dist {

// How long one collective may take before the job is declared broken. Long enough for a
// multi-GiB bucket over a slow inter-node link and for a rank that is a few steps' worth of
// data loading behind; short enough that a dead node costs minutes, not a lease period.
inline constexpr absl::Duration kDefaultCollectiveTimeout = absl::Minutes(5);
// Overrides kDefaultCollectiveTimeout, in seconds (the fault tests use a few seconds).
inline constexpr char kCollectiveTimeoutEnv[] = "LIKENESS_COLLECTIVE_TIMEOUT_S";
// After a timeout, how long a rank waits for its peers' answers to "where are you" before it
// names the ranks that did not answer.
inline constexpr absl::Duration kDiagnosisGrace = absl::Seconds(2);

// Broadcast() packs tensors into byte buffers of at most this size: large enough that the
// per-collective latency is negligible, small enough to be spare memory even on a full GPU.
inline constexpr int64_t kBroadcastChunkBytes = int64_t{256} << 20;

enum class ReduceOp { kSum, kAvg, kMax };
const char* ReduceOpName(ReduceOp op);

// An all-reduce in flight. Wait() returns once the result is in the tensor it was started on,
// or with the collective's error (deadline included). Destroying an unfinished Work waits.
class Work {
 public:
  virtual ~Work() = default;
  // Drives progress without blocking (MPI needs calls to progress); true once complete.
  virtual bool Poll() = 0;
  virtual absl::Status Wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"
  // The device this rank's tensors live on (CPU for single and MPI, cuda:<local_rank> for NCCL).
  virtual torch::Device device() const = 0;
  absl::Duration timeout() const { return timeout_; }
  void set_timeout(absl::Duration timeout) { timeout_ = timeout; }

  // Starts an in-place all-reduce of one contiguous tensor. `what` names it in errors
  // ("gradient bucket 3"). Every rank must start the same collectives in the same order.
  virtual absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(torch::Tensor flat, ReduceOp op,
                                                               absl::string_view what) = 0;
  // In-place all-reduce of a list of tensors (any shapes, one dtype and device): flattened
  // into one buffer, reduced, copied back.
  absl::Status AllReduce(std::vector<torch::Tensor>& tensors, ReduceOp op,
                         absl::string_view what = "all-reduce");
  // Starts an in-place broadcast of one contiguous uint8 tensor (the bytes of other tensors).
  virtual absl::StatusOr<std::unique_ptr<Work>> StartBroadcast(torch::Tensor bytes, int root,
                                                               absl::string_view what) = 0;
  // In place: every rank's tensors become `root`'s. Sent as byte buffers of at most
  // kBroadcastChunkBytes, so broadcasting a whole UNet costs one chunk of extra memory.
  absl::Status Broadcast(std::vector<torch::Tensor>& tensors, int root,
                         absl::string_view what = "broadcast");
  virtual absl::Status Barrier(absl::string_view what = "barrier") = 0;
  // Small values (step counters, flags): element r of the result is rank r's value.
  virtual absl::StatusOr<std::vector<int64_t>> AllGather(int64_t value,
                                                         absl::string_view what = "all-gather") = 0;
  // Ends the whole job now with `exit_code` on every rank (MPI_Abort; ncclCommAbort first).
  [[noreturn]] virtual void Abort(int exit_code) = 0;

 private:
  absl::Duration timeout_ = kDefaultCollectiveTimeout;
};

// The collective timeout of this process: kCollectiveTimeoutEnv if set and valid, else
// kDefaultCollectiveTimeout.
absl::Duration CollectiveTimeoutFromEnvironment();

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_COMMUNICATOR_H_

#include "worker/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "worker/dist/requeue.h"

namespace likeness::dist {
namespace {

// The stream libtorch uses unless a caller selects another: the legacy default stream.
const cudaStream_t kProducerStream = cudaStreamLegacy;

absl::StatusOr<ncclDataType_t> NcclType(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return ncclFloat32;
    case torch::kHalf:
      return ncclFloat16;
    case torch::kBFloat16:
      return ncclBfloat16;
    case torch::kDouble:
      return ncclFloat64;
    case torch::kLong:
      return ncclInt64;
    case torch::kInt:
      return ncclInt32;
    case torch::kByte:
      return ncclUint8;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dist: NCCL cannot reduce ", c10::toString(type)));
  }
}

ncclRedOp_t NcclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;  // NCCL >= 2.10
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

class NcclCommunicator;

class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator* comm, int64_t seq, std::string what, absl::Time deadline,
           torch::Tensor tensor, cudaEvent_t done)
      : comm_(comm),
        seq_(seq),
        what_(std::move(what)),
        deadline_(deadline),
        tensor_(std::move(tensor)),
        done_event_(done) {}
  ~NcclWork() override;
  bool Poll() override;
  absl::Status Wait() override;

 private:
  NcclCommunicator* comm_;
  int64_t seq_;
  std::string what_;
  absl::Time deadline_;
  torch::Tensor tensor_;  // kept alive until the collective is done
  cudaEvent_t done_event_;
  bool done_ = false;
  absl::Status status_;
};

class NcclCommunicator : public Communicator {
 public:
  // `gpu`: the CUDA device index this rank uses (its local rank modulo the visible GPUs).
  NcclCommunicator(std::unique_ptr<Communicator> mpi, ncclComm_t comm, cudaStream_t stream,
                   int gpu, MpiOptions options)
      : mpi_(std::move(mpi)),
        comm_(comm),
        stream_(stream),
        gpu_(gpu),
        options_(options) {
    set_timeout(options.timeout);
  }
  ~NcclCommunicator() override {
    if (!broken_) ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  int local_rank() const override { return mpi_->local_rank(); }
  std::string backend() const override { return "nccl"; }
  torch::Device device() const override { return torch::Device(torch::kCUDA, gpu_); }

  absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(torch::Tensor flat, ReduceOp op,
                                                       absl::string_view what) override {
    absl::StatusOr<ncclDataType_t> type = NcclType(flat.scalar_type());
    if (!type.ok()) return type.status();
    return Launch(flat, absl::StrCat("all-reduce ", ReduceOpName(op), " '", what, "'"),
                  [&](cudaStream_t stream) {
                    return ncclAllReduce(flat.data_ptr(), flat.data_ptr(),
                                         static_cast<size_t>(flat.numel()), *type, NcclOp(op),
                                         comm_, stream);
                  });
  }
  absl::StatusOr<std::unique_ptr<Work>> StartBroadcast(torch::Tensor bytes, int root,
                                                       absl::string_view what) override {
    return Launch(bytes, absl::StrCat("broadcast from rank ", root, " '", what, "'"),
                  [&](cudaStream_t stream) {
                    return ncclBroadcast(bytes.data_ptr(), bytes.data_ptr(),
                                         static_cast<size_t>(bytes.numel()), ncclUint8, root,
                                         comm_, stream);
                  });
  }
  // Small and host-side: the MPI communicator (its diagnosis names silent ranks), under this
  // communicator's current deadline (ShareRankZeroStatus lengthens it for checkpoints).
  absl::Status Barrier(absl::string_view what) override {
    mpi_->set_timeout(timeout());
    return mpi_->Barrier(what);
  }
  absl::StatusOr<std::vector<int64_t>> AllGather(int64_t value, absl::string_view what) override {
    mpi_->set_timeout(timeout());
    return mpi_->AllGather(value, what);
  }
  [[noreturn]] void Abort(int exit_code) override {
    if (!broken_) ncclCommAbort(comm_);
    broken_ = true;
    mpi_->Abort(exit_code);
    std::_Exit(exit_code);  // not reached: MPI_Abort ends the process
  }

  // One poll of a collective's completion event and of the communicator's async error.
  absl::StatusOr<bool> Test(cudaEvent_t event, int64_t seq, absl::string_view what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (broken_) return Broken();
    const cudaError_t query = cudaEventQuery(event);
    if (query == cudaSuccess) return true;
    if (query != cudaErrorNotReady) {
      return FailLocked(seq, what, absl::StrCat("CUDA error: ", cudaGetErrorString(query)));
    }
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      return FailLocked(seq, what, absl::StrCat("NCCL error: ", ncclGetErrorString(async)));
    }
    return false;
  }

  absl::Status Fail(int64_t seq, absl::string_view what, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (broken_) return Broken();
    return FailLocked(seq, what, reason);
  }

 private:
  template <typename Enqueue>
  absl::StatusOr<std::unique_ptr<Work>> Launch(const torch::Tensor& tensor, std::string what,
                                               Enqueue enqueue) {
    if (!tensor.is_cuda() || !tensor.is_contiguous() || tensor.device().index() != gpu_) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": the NCCL communicator works on contiguous tensors on cuda:", gpu_));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (broken_) return Broken();
    const int64_t seq = next_seq_++;
    const absl::Time deadline = absl::Now() + timeout();
    cudaEvent_t ready = nullptr, done = nullptr;
    cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
    cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
    // The collective reads what the producer stream wrote (the bucket copy).
    cudaEventRecord(ready, kProducerStream);
    cudaStreamWaitEvent(stream_, ready, 0);
    cudaEventDestroy(ready);  // released once the wait is done
    ncclResult_t result = enqueue(stream_);
    // Non-blocking communicator: the enqueue may still be in progress.
    while (result == ncclInProgress) {
      if (absl::Now() > deadline) {
        cudaEventDestroy(done);
        return FailLocked(seq, what, "timed out while enqueuing");
      }
      std::this_thread::yield();
      ncclCommGetAsyncError(comm_, &result);
    }
    if (result != ncclSuccess) {
      cudaEventDestroy(done);
      return FailLocked(seq, what, absl::StrCat("NCCL error: ", ncclGetErrorString(result)));
    }
    cudaEventRecord(done, stream_);
    return std::unique_ptr<Work>(new NcclWork(this, seq, std::move(what), deadline, tensor, done));
  }

  absl::Status Broken() const {
    return MarkRequeue(absl::AbortedError(
        absl::StrCat("dist: rank ", rank(), ": the NCCL communicator broke earlier: ", message_)));
  }

  absl::Status FailLocked(int64_t seq, absl::string_view what, const std::string& reason) {
    // NCCL cannot say which peer is missing; the ranks that report no timeout are the stuck
    // ones (every healthy rank prints this line).
    message_ = absl::StrCat("dist: rank ", rank(), " of ", size(), ": NCCL collective #", seq,
                            " (", what, ") ", reason,
                            "; ranks that did not print this line are dead or stuck");
    ncclCommAbort(comm_);  // ends this rank's kernels waiting on the lost peer
    broken_ = true;
    if (options_.abort_on_error) {
      std::fprintf(stderr, "%s; aborting the job with exit code %d (requeue)\n", message_.c_str(),
                   kRequeueExitCode);
      std::fflush(stderr);
      mpi_->Abort(kRequeueExitCode);
    }
    return MarkRequeue(absl::AbortedError(message_));
  }

  std::unique_ptr<Communicator> mpi_;
  ncclComm_t comm_;
  cudaStream_t stream_;
  int gpu_;
  MpiOptions options_;
  std::mutex mutex_;
  int64_t next_seq_ = 0;
  bool broken_ = false;
  std::string message_;
};

NcclWork::~NcclWork() {
  if (!done_) (void)Wait();
  cudaEventDestroy(done_event_);
}

bool NcclWork::Poll() {
  if (done_) return true;
  absl::StatusOr<bool> complete = comm_->Test(done_event_, seq_, what_);
  if (!complete.ok() || *complete) {
    done_ = true;
    status_ = complete.status();
  }
  return done_;
}

absl::Status NcclWork::Wait() {
  while (!Poll()) {
    if (absl::Now() > deadline_) {
      done_ = true;
      status_ = comm_->Fail(seq_, what_, absl::StrCat("timed out after ",
                                                      absl::FormatDuration(comm_->timeout())));
      break;
    }
    std::this_thread::yield();
  }
  return status_;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(
    const DistEnvironment& env, std::unique_ptr<Communicator> mpi, const MpiOptions& options) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("dist: rank ", env.rank, " sees no GPU (NCCL needs one per rank)"));
  }
  // The local rank picks the GPU; modulo the visible ones, for launchers that show each task
  // only its own (srun --gpus-per-task). data_parallel.cc maps "cuda" the same way.
  const int gpu = env.local_rank % devices;
  cudaSetDevice(gpu);
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (mpi->rank() == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return absl::UnavailableError(absl::StrCat("dist: ncclGetUniqueId: ", ncclGetErrorString(r)));
    }
  }
  std::vector<torch::Tensor> id_bytes = {torch::from_blob(
      &id, {static_cast<int64_t>(sizeof(id))}, torch::TensorOptions().dtype(torch::kByte))};
  if (absl::Status s = mpi->Broadcast(id_bytes, 0, "NCCL unique id"); !s.ok()) return s;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ncclResult_t result = ncclCommInitRankConfig(&comm, mpi->size(), id, mpi->rank(), &config);
  const absl::Time deadline = absl::Now() + options.timeout;
  while (result == ncclInProgress) {
    if (absl::Now() > deadline) {
      ncclCommAbort(comm);
      return MarkRequeue(absl::AbortedError(absl::StrCat(
          "dist: rank ", mpi->rank(), ": NCCL init timed out after ",
          absl::FormatDuration(options.timeout), " (a peer never joined)")));
    }
    std::this_thread::yield();
    ncclCommGetAsyncError(comm, &result);
  }
  if (result != ncclSuccess) {
    if (comm != nullptr) ncclCommAbort(comm);
    return MarkRequeue(absl::UnavailableError(
        absl::StrCat("dist: ncclCommInitRankConfig: ", ncclGetErrorString(result))));
  }
  cudaStream_t stream = nullptr;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  return std::unique_ptr<Communicator>(
      new NcclCommunicator(std::move(mpi), comm, stream, gpu, options));
}

bool HaveNccl() { return true; }

}  // namespace likeness::dist

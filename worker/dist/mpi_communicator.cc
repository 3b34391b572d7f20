#include "worker/dist/mpi_communicator.h"

#include <mpi.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/dist/requeue.h"

namespace likeness::dist {
namespace {

// Tags of the diagnosis side channel (its own communicator, so they never meet collectives).
constexpr int kPingTag = 1;
constexpr int kPongTag = 2;
// Answer to a ping from a rank that is not waiting in any collective.
constexpr int64_t kNotInCollective = -1;
// Between MPI_Test calls of a diagnosis (the collective loop only yields: latency matters
// there, a diagnosis is a once-per-job event).
constexpr auto kDiagnosisPollInterval = std::chrono::milliseconds(1);

// MPI_THREAD_SERIALIZED plus this mutex: autograd hooks may start collectives from a backward
// thread, never two threads at once inside MPI.
std::mutex& MpiMutex() {
  static std::mutex* mutex = new std::mutex();
  return *mutex;
}

// Set once a collective broke: its request can never be completed, so MPI_Finalize would hang.
std::atomic<bool> g_mpi_broken{false};

void FinalizeMpiAtExit() {
  if (g_mpi_broken.load()) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

absl::Status EnsureMpiInitialized() {
  std::lock_guard<std::mutex> lock(MpiMutex());
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return absl::OkStatus();
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
    return absl::UnavailableError("dist: MPI_Init_thread failed");
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    return absl::FailedPreconditionError(
        "dist: this MPI does not provide MPI_THREAD_SERIALIZED (needed by backward hooks)");
  }
  std::atexit(FinalizeMpiAtExit);
  return absl::OkStatus();
}

std::string MpiErrorString(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, length);
}

absl::StatusOr<MPI_Datatype> ReduceType(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return MPI_FLOAT;
    case torch::kDouble:
      return MPI_DOUBLE;
    case torch::kInt:
      return MPI_INT32_T;
    case torch::kLong:
      return MPI_INT64_T;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dist: MPI cannot reduce ", c10::toString(type)));
  }
}

MPI_Op ToMpiOp(ReduceOp op) { return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM; }

class MpiCommunicator;

class MpiWork : public Work {
 public:
  MpiWork(MpiCommunicator* comm, int64_t seq, std::string what, absl::Time deadline,
          torch::Tensor target, torch::Tensor staging, ReduceOp op)
      : comm_(comm),
        seq_(seq),
        what_(std::move(what)),
        deadline_(deadline),
        target_(std::move(target)),
        staging_(std::move(staging)),
        op_(op) {}
  ~MpiWork() override {
    if (!done_) (void)Wait();
  }
  MPI_Request* request() { return &request_; }
  bool Poll() override;
  absl::Status Wait() override;

 private:
  void Finish(absl::Status status);

  MpiCommunicator* comm_;
  int64_t seq_;
  std::string what_;
  absl::Time deadline_;
  torch::Tensor target_;   // the caller's tensor
  torch::Tensor staging_;  // float32 copy for dtypes MPI cannot reduce; undefined otherwise
  ReduceOp op_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool done_ = false;
  absl::Status status_;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, MPI_Comm ping_comm, int rank, int size, int local_rank,
                  MpiOptions options)
      : comm_(comm),
        ping_comm_(ping_comm),
        rank_(rank),
        size_(size),
        local_rank_(local_rank),
        options_(options) {
    set_timeout(options.timeout);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string backend() const override { return "mpi"; }
  torch::Device device() const override { return torch::kCPU; }

  absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(torch::Tensor flat, ReduceOp op,
                                                       absl::string_view what) override;
  absl::StatusOr<std::unique_ptr<Work>> StartBroadcast(torch::Tensor bytes, int root,
                                                       absl::string_view what) override;
  absl::Status Barrier(absl::string_view what) override;
  absl::StatusOr<std::vector<int64_t>> AllGather(int64_t value, absl::string_view what) override;
  [[noreturn]] void Abort(int exit_code) override {
    g_mpi_broken = true;
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this satisfies [[noreturn]]
  }

  // One MPI_Test of `request` (and answers to pending pings). True once complete.
  absl::StatusOr<bool> Test(MPI_Request* request, int64_t seq, absl::string_view what);
  // Polls `request` until it completes, fails, or `deadline` passes (then Fail()).
  absl::Status WaitFor(MPI_Request* request, int64_t seq, absl::string_view what,
                       absl::Time deadline);

 private:
  // Registers a collective about to start; returns its sequence number, or the broken status.
  absl::StatusOr<int64_t> Begin();
  void ServicePingsLocked();
  std::string DiagnoseLocked(int64_t seq);
  // Steps 4 and 5 of the header's protocol.
  absl::Status Fail(int64_t seq, absl::string_view what, const std::string& reason);
  absl::Status BrokenStatus() const {
    return MarkRequeue(absl::AbortedError(absl::StrCat(
        "dist: rank ", rank_, ": the communicator broke earlier: ", broken_message_)));
  }

  MPI_Comm comm_;
  MPI_Comm ping_comm_;
  int rank_, size_, local_rank_;
  MpiOptions options_;
  int64_t next_seq_ = 0;
  std::set<int64_t> in_flight_;  // started, not yet seen complete
  bool broken_ = false;
  std::string broken_message_;
  struct Pong {
    std::unique_ptr<int64_t> value;
    MPI_Request request;
  };
  std::deque<Pong> pongs_;  // answers in flight (their buffers must outlive the sends)
};

bool MpiWork::Poll() {
  if (done_) return true;
  absl::StatusOr<bool> complete = comm_->Test(&request_, seq_, what_);
  if (!complete.ok()) {
    Finish(complete.status());
    return true;
  }
  if (*complete) Finish(absl::OkStatus());
  return done_;
}

absl::Status MpiWork::Wait() {
  if (!done_) Finish(comm_->WaitFor(&request_, seq_, what_, deadline_));
  return status_;
}

void MpiWork::Finish(absl::Status status) {
  done_ = true;
  status_ = std::move(status);
  if (!status_.ok()) return;
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor& result = staging_.defined() ? staging_ : target_;
    if (op_ == ReduceOp::kAvg) result.div_(comm_->size());
    if (staging_.defined()) target_.copy_(staging_);
  } catch (const c10::Error& e) {
    status_ = absl::InternalError(absl::StrCat(what_, ": ", e.what_without_backtrace()));
  }
}

absl::StatusOr<int64_t> MpiCommunicator::Begin() {
  if (broken_) return BrokenStatus();
  const int64_t seq = next_seq_++;
  in_flight_.insert(seq);
  return seq;
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartAllReduce(torch::Tensor flat,
                                                                      ReduceOp op,
                                                                      absl::string_view what) {
  if (!flat.device().is_cpu() || !flat.is_contiguous()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the MPI communicator reduces contiguous CPU tensors"));
  }
  if (flat.numel() > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", flat.numel(),
                                                   " elements exceed one MPI message"));
  }
  torch::Tensor staging;
  torch::ScalarType type = flat.scalar_type();
  if (type == torch::kBFloat16 || type == torch::kHalf) {
    staging = flat.to(torch::kFloat);  // MPI has no 16-bit float types
    type = torch::kFloat;
  }
  absl::StatusOr<MPI_Datatype> datatype = ReduceType(type);
  if (!datatype.ok()) return datatype.status();
  std::lock_guard<std::mutex> lock(MpiMutex());
  absl::StatusOr<int64_t> seq = Begin();
  if (!seq.ok()) return seq.status();
  auto work = std::make_unique<MpiWork>(this, *seq,
                                        absl::StrCat("all-reduce ", ReduceOpName(op), " '", what, "'"),
                                        absl::Now() + timeout(), flat, staging, op);
  torch::Tensor& buffer = staging.defined() ? staging : flat;
  const int rc = MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(buffer.numel()),
                                *datatype, ToMpiOp(op), comm_, work->request());
  if (rc != MPI_SUCCESS) {
    return absl::InternalError(absl::StrCat(what, ": MPI_Iallreduce: ", MpiErrorString(rc)));
  }
  return std::unique_ptr<Work>(std::move(work));
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartBroadcast(torch::Tensor bytes,
                                                                      int root,
                                                                      absl::string_view what) {
  if (!bytes.device().is_cpu() || !bytes.is_contiguous() || bytes.scalar_type() != torch::kByte ||
      bytes.numel() > INT_MAX || root < 0 || root >= size_) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": broadcast needs a contiguous CPU uint8 tensor under 2 GiB and a valid root"));
  }
  std::lock_guard<std::mutex> lock(MpiMutex());
  absl::StatusOr<int64_t> seq = Begin();
  if (!seq.ok()) return seq.status();
  auto work = std::make_unique<MpiWork>(this, *seq,
                                        absl::StrCat("broadcast from rank ", root, " '", what, "'"),
                                        absl::Now() + timeout(), bytes, torch::Tensor(),
                                        ReduceOp::kSum);
  const int rc = MPI_Ibcast(bytes.data_ptr(), static_cast<int>(bytes.numel()), MPI_BYTE, root,
                            comm_, work->request());
  if (rc != MPI_SUCCESS) {
    return absl::InternalError(absl::StrCat(what, ": MPI_Ibcast: ", MpiErrorString(rc)));
  }
  return std::unique_ptr<Work>(std::move(work));
}

absl::Status MpiCommunicator::Barrier(absl::string_view what) {
  MPI_Request request = MPI_REQUEST_NULL;
  int64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(MpiMutex());
    absl::StatusOr<int64_t> s = Begin();
    if (!s.ok()) return s.status();
    seq = *s;
    const int rc = MPI_Ibarrier(comm_, &request);
    if (rc != MPI_SUCCESS) {
      return absl::InternalError(absl::StrCat(what, ": MPI_Ibarrier: ", MpiErrorString(rc)));
    }
  }
  return WaitFor(&request, seq, absl::StrCat("barrier '", what, "'"), absl::Now() + timeout());
}

absl::StatusOr<std::vector<int64_t>> MpiCommunicator::AllGather(int64_t value,
                                                                absl::string_view what) {
  std::vector<int64_t> out(size_);
  MPI_Request request = MPI_REQUEST_NULL;
  int64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(MpiMutex());
    absl::StatusOr<int64_t> s = Begin();
    if (!s.ok()) return s.status();
    seq = *s;
    const int rc =
        MPI_Iallgather(&value, 1, MPI_INT64_T, out.data(), 1, MPI_INT64_T, comm_, &request);
    if (rc != MPI_SUCCESS) {
      return absl::InternalError(absl::StrCat(what, ": MPI_Iallgather: ", MpiErrorString(rc)));
    }
  }
  absl::Status status =
      WaitFor(&request, seq, absl::StrCat("all-gather '", what, "'"), absl::Now() + timeout());
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<bool> MpiCommunicator::Test(MPI_Request* request, int64_t seq,
                                           absl::string_view what) {
  int rc = MPI_SUCCESS;
  {
    std::lock_guard<std::mutex> lock(MpiMutex());
    if (broken_) return BrokenStatus();
    int flag = 0;
    rc = MPI_Test(request, &flag, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS) {
      if (flag) {
        in_flight_.erase(seq);
        return true;
      }
      ServicePingsLocked();
      return false;
    }
  }
  return Fail(seq, what, absl::StrCat("failed: ", MpiErrorString(rc)));
}

absl::Status MpiCommunicator::WaitFor(MPI_Request* request, int64_t seq, absl::string_view what,
                                      absl::Time deadline) {
  while (true) {
    absl::StatusOr<bool> complete = Test(request, seq, what);
    if (!complete.ok()) return complete.status();
    if (*complete) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return Fail(seq, what, absl::StrCat("timed out after ", absl::FormatDuration(timeout())));
    }
    // Yield, not sleep: a collective's latency is tens of microseconds on one node.
    std::this_thread::yield();
  }
}

void MpiCommunicator::ServicePingsLocked() {
  while (!pongs_.empty()) {
    int flag = 0;
    MPI_Test(&pongs_.front().request, &flag, MPI_STATUS_IGNORE);
    if (!flag) break;
    pongs_.pop_front();
  }
  while (true) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kPingTag, ping_comm_, &flag, &status);
    if (!flag) return;
    int64_t asked = 0;
    MPI_Recv(&asked, 1, MPI_INT64_T, status.MPI_SOURCE, kPingTag, ping_comm_, MPI_STATUS_IGNORE);
    Pong pong;
    pong.value = std::make_unique<int64_t>(in_flight_.empty() ? kNotInCollective
                                                              : *in_flight_.begin());
    MPI_Isend(pong.value.get(), 1, MPI_INT64_T, status.MPI_SOURCE, kPongTag, ping_comm_,
              &pong.request);
    pongs_.push_back(std::move(pong));
  }
}

std::string MpiCommunicator::DiagnoseLocked(int64_t seq) {
  std::vector<int64_t> asks(size_, seq), answers(size_, kNotInCollective);
  std::vector<MPI_Request> receives(size_, MPI_REQUEST_NULL);
  std::vector<bool> answered(size_, false);
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    MPI_Request send = MPI_REQUEST_NULL;
    MPI_Isend(&asks[peer], 1, MPI_INT64_T, peer, kPingTag, ping_comm_, &send);
    MPI_Request_free(&send);  // a small eager message: completes locally
    MPI_Irecv(&answers[peer], 1, MPI_INT64_T, peer, kPongTag, ping_comm_, &receives[peer]);
  }
  const absl::Time deadline = absl::Now() + kDiagnosisGrace;
  int missing = size_ - 1;
  while (missing > 0 && absl::Now() < deadline) {
    for (int peer = 0; peer < size_; ++peer) {
      if (peer == rank_ || answered[peer]) continue;
      int flag = 0;
      MPI_Test(&receives[peer], &flag, MPI_STATUS_IGNORE);
      if (flag) {
        answered[peer] = true;
        --missing;
      }
    }
    ServicePingsLocked();  // peers that timed out too are asking us
    std::this_thread::sleep_for(kDiagnosisPollInterval);
  }
  std::vector<std::string> silent, elsewhere;
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    if (!answered[peer]) {
      MPI_Cancel(&receives[peer]);
      silent.push_back(absl::StrCat(peer));
    } else if (answers[peer] != seq) {
      elsewhere.push_back(answers[peer] == kNotInCollective
                              ? absl::StrCat(peer, " (in no collective)")
                              : absl::StrCat(peer, " (in collective #", answers[peer], ")"));
    }
  }
  std::vector<std::string> parts;
  if (!silent.empty()) {
    parts.push_back(absl::StrCat("rank(s) ", absl::StrJoin(silent, ", "), " did not answer within ",
                                 absl::FormatDuration(kDiagnosisGrace),
                                 " (dead, or stuck outside any collective)"));
  }
  if (!elsewhere.empty()) {
    parts.push_back(absl::StrCat("rank(s) ", absl::StrJoin(elsewhere, ", "),
                                 " wait in another collective (ranks disagree on the order)"));
  }
  if (parts.empty()) parts.push_back("every peer waits in this collective too (a stuck link?)");
  return absl::StrJoin(parts, "; ");
}

absl::Status MpiCommunicator::Fail(int64_t seq, absl::string_view what, const std::string& reason) {
  std::string message;
  {
    std::lock_guard<std::mutex> lock(MpiMutex());
    if (broken_) return BrokenStatus();
    message = absl::StrCat("dist: rank ", rank_, " of ", size_, ": collective #", seq, " (", what,
                           ") ", reason, ": ", DiagnoseLocked(seq));
    broken_ = true;
    broken_message_ = message;
    g_mpi_broken = true;
  }
  if (options_.abort_on_error) {
    std::fprintf(stderr, "%s; aborting the job with exit code %d (requeue)\n", message.c_str(),
                 kRequeueExitCode);
    std::fflush(stderr);
    Abort(kRequeueExitCode);
  }
  return MarkRequeue(absl::AbortedError(message));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator(const DistEnvironment& env,
                                                                   const MpiOptions& options) {
  if (absl::Status s = EnsureMpiInitialized(); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(MpiMutex());
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (env.source != "none" && (rank != env.rank || size != env.size)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dist: the environment (", env.source, ") says rank ", env.rank, " of ", env.size,
        ", MPI says rank ", rank, " of ", size));
  }
  // Two duplicates: collectives never match the diagnosis pings, and another library's use
  // of MPI_COMM_WORLD never matches ours. MPI_Comm_dup is blocking, but every rank calls it
  // right after MPI_Init, before any rank can be lost.
  MPI_Comm comm = MPI_COMM_NULL, ping_comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  MPI_Comm_dup(MPI_COMM_WORLD, &ping_comm);
  // Errors come back as codes so that Fail() can name the collective before aborting.
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(ping_comm, MPI_ERRORS_RETURN);
  return std::unique_ptr<Communicator>(
      new MpiCommunicator(comm, ping_comm, rank, size, env.local_rank, options));
}

bool HaveMpi() { return true; }

}  // namespace likeness::dist
